"""Run manifests: the durable launch and collector state of one run, `runs/<run-id>/manifest.json`.

Backends create the manifest (`planned`) and `collect` advances it:

    planned -> detached -> running -> ok | error        (modal: launch, then polls)
    planned -> running -> ok | error | interrupted      (local: Ctrl-C is `interrupted`)

A receipt whose status is `interrupted` (a cancelled or Ctrl-C'd run) ends in `interrupted`.

Every transition is timestamped (UTC) and the file is rewritten atomically each time, so a run
that dies anywhere still leaves the last state it reached. A failure carries a typed stage from
the seeds' triage order (bootstrap, remote, collector, record, persistence): a manifest stuck in
`detached` points at launch or scheduling, one stuck in `running` at the remote side or the
collector.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from megaspec.runtime.contract.artifact import Artifact
from megaspec.runtime.contract.claim import claim
from megaspec.runtime.contract.clock import utc_now
from megaspec.runtime.contract.files import (
    UnreadableFile,
    loads_bounded,
    read_text_capped,
    write_text_atomic,
)
from megaspec.runtime.contract.rundir import MANIFEST_CLAIM, MANIFEST_FILE, RECEIPT_FILE
from megaspec.runtime.contract.vocabulary import Lane, Outcome, Target

from .. import __version__

if TYPE_CHECKING:  # the receipt models are built only when a receipt is read (lint must start fast)
    from megaspec.runtime.contract.receipt import Receipt

SCHEMA_VERSION = "megaspec.manifest.v1"

State = Literal["planned", "detached", "running"] | Outcome
ErrorStage = Literal["bootstrap", "remote", "collector", "record", "persistence"]
Backend = Target  # where the run executes (`apply --target local` of a Modal spec runs locally)

TERMINAL_STATES: frozenset[str] = frozenset(get_args(Outcome))
_NEXT_STATES: dict[str, frozenset[str]] = {
    "planned": frozenset({"detached", "running", "error", "interrupted"}),
    "detached": frozenset({"running", *TERMINAL_STATES}),
    "running": TERMINAL_STATES,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transition(_Frozen):
    state: State
    at: str  # UTC ISO-8601, "2026-01-02T03:04:05Z"


class ManifestError(_Frozen):
    """What failed, classified by the stage that owns the fix (the seeds' triage table).

    Not the receipt's `RunError` (a runtime code, stage and step): the manifest's stages are the
    bookkeeping layers around a run, and `triage_error` maps one onto the other."""

    stage: ErrorStage
    message: str
    rank: int | None = None  # the first failing rank, when the runtime named one
    error_file: str | None = None  # that rank's torch-elastic error.json

    def summary(self) -> str:
        """`error[remote]: <first line>`: the error in one line, as `status` and `report` show it."""
        return f"error[{self.stage}]: {self.message.splitlines()[0] if self.message else ''}"


class SpecRef(_Frozen):
    path: str
    sha256: str


class ModalCall(_Frozen):
    """Identity of the detached call; the call graph is a best-effort snapshot, never the outcome."""

    function_call_id: str | None = None  # None only when the launch was interrupted before the spawn
    app_id: str | None = None
    dashboard_url: str | None = None
    task_id: str | None = None  # the container, once the call graph names one
    call_graph: list[dict[str, str]] = Field(default_factory=list)
    # Where it was launched from: a call is known only to its workspace (and environment), and a poll
    # made with another profile is told "not found" about a run that is fine.
    workspace: str | None = None
    environment: str | None = None
    profile: str | None = None

    def launched_from(self) -> str:
        return f"workspace `{self.workspace}`, environment `{self.environment}`, profile `{self.profile}`"


class LocalProcess(_Frozen):
    """The process that runs a local run, so a refresh can tell a run in progress from an orphan."""

    pid: int
    host: str
    started_at: float | None = None  # Unix time the process started (Linux), against pid reuse


class Manifest(_Frozen, Artifact):
    KIND = "manifest"

    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION
    megaspec_version: str = __version__
    run_id: str
    name: str
    lane: Lane
    backend: Backend
    state: State
    transitions: list[Transition]
    spec: SpecRef
    plan_sha256: str  # Plan.sha256(): the experiment this run is (not the comparison class: runs/comparison.py)
    app_name: str
    rehearsal: bool = False
    modal: ModalCall | None = None
    process: LocalProcess | None = None  # local runs: who runs it
    last_polled_at: str | None = None
    completed_at: str | None = None
    receipt: str | None = None  # path of the stored receipt, relative to the run directory
    error: ManifestError | None = None
    notes: list[str] = Field(default_factory=list)  # how the collector got its answer, when unusual
    flags: dict[str, str | int] = Field(default_factory=dict)  # apply's overrides (`steps`, `target`): plan.run.flags
    rerun_of: str | None = None  # the run id this run repeats (`megaspec rerun`)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def new_manifest(plan, *, backend: Backend, now: str | None = None) -> Manifest:
    """The `planned` manifest of a lowered Plan (`plan.run.run_id` must be set)."""
    at = now or utc_now()
    return Manifest(
        run_id=plan.run.run_id, name=plan.name, lane=plan.lane, backend=backend, state="planned",
        transitions=[Transition(state="planned", at=at)],
        spec=SpecRef(path=plan.run.spec_path, sha256=plan.run.spec_sha256),
        plan_sha256=plan.sha256(), app_name=plan.modal.app_name, rehearsal=plan.run.rehearsal,
        flags=plan.run.flags, rerun_of=plan.run.rerun_of,
    )


def advance(manifest: Manifest, state: State, *, now: str | None = None, **updates) -> Manifest:
    """The manifest in `state`, timestamped; terminal states also set `completed_at`.

    Staying in the same state only applies `updates`. An illegal move (out of a terminal state,
    or backwards) is a bug in a backend, so it raises instead of writing a lie.
    """
    at = now or utc_now()
    if state == manifest.state:
        return _updated(manifest, updates)
    if state not in _NEXT_STATES.get(manifest.state, frozenset()):
        raise ValueError(f"manifest {manifest.run_id}: cannot go from {manifest.state!r} to {state!r}")
    fields = {"state": state, "transitions": [*manifest.transitions, Transition(state=state, at=at)], **updates}
    if state in TERMINAL_STATES:
        fields["completed_at"] = at
    return _updated(manifest, fields)


def _updated(manifest: Manifest, fields: dict) -> Manifest:
    """A validated copy (`model_copy(update=...)` would skip validation and write a bad file later)."""
    return Manifest.model_validate({**dict(manifest), **fields})


def write_manifest(run_dir: Path, manifest: Manifest) -> Path:
    path = Path(run_dir) / MANIFEST_FILE
    write_text_atomic(path, manifest.model_dump_json(indent=2) + "\n")
    return path


def update_manifest(run_dir: Path, change: Callable[[Manifest], Manifest]) -> Manifest:
    """The run's state change, made alone: claim the run, re-read its manifest, apply `change` to what
    is stored now (not to what the caller read earlier), write it when it changed, release.

    Two commands polling, cancelling or launching the same run at once each decide from the other's
    result. `change` must not wait on the network: the claim is held only for the decision and the write.
    """
    with claim(Path(run_dir) / MANIFEST_CLAIM, wait=True):
        before = read_manifest(run_dir)
        after = change(before)
        if after != before:
            write_manifest(run_dir, after)
        return after


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest (a run directory or the file), checking its schema version first."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILE
    return Manifest.read(path)


class BackendError(Exception):
    """A launch or collect problem the user can fix (credentials, a wrong run directory).

    Shown like a diagnostic, `error: <message>` plus `= help: <hint>`, with exit code `code` (1, or
    2 for a usage problem such as a missing extra).
    """

    def __init__(self, message: str, *, hint: str, code: int = 1):
        super().__init__(message)
        self.hint = hint
        self.code = code


def store_receipt(run_dir: Path, manifest: Manifest, payload, *, source: str) -> Manifest:
    """Validate a returned receipt, write it to the run directory, and finish the manifest from it.

    An invalid receipt is an error at stage `record` (the run may have worked; its record did
    not); a failed write is stage `persistence`. Otherwise the receipt's own status decides.
    """
    try:
        receipt = parse_receipt(payload)
        _check_belongs(manifest, receipt)
    except ValueError as e:
        return advance(manifest, "error", error=ManifestError(stage="record", message=f"{source}: {e}"))
    try:
        write_text_atomic(Path(run_dir) / RECEIPT_FILE, receipt.model_dump_json(indent=2) + "\n")
    except OSError as e:
        return advance(manifest, "error", error=ManifestError(stage="persistence", message=f"{RECEIPT_FILE}: {e}"))
    return finish_from_receipt(manifest, receipt)


def store_receipt_file(run_dir: Path, manifest: Manifest, path: Path) -> Manifest:
    """store_receipt of the receipt file `path`, read through the bounded reader (an unreadable one is
    an error at stage `record`, naming the file)."""
    try:
        text = read_text_capped(path, "receipt")
    except UnreadableFile as e:
        return advance(manifest, "error", error=ManifestError(stage="record", message=str(e)))
    return store_receipt(run_dir, manifest, text, source=f"`{path}`")


def parse_receipt(payload) -> Receipt:
    """A receipt from a dict, JSON text or bytes; ValueError names what is wrong with it."""
    from megaspec.runtime.contract.receipt import Receipt

    if isinstance(payload, bytes | str):
        try:
            payload = loads_bounded(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
        except ValueError as e:
            raise ValueError(f"the receipt is not JSON ({e})") from e
    payload = Receipt.upgraded(payload)
    try:
        return Receipt.model_validate(payload)
    except ValueError as e:  # pydantic's ValidationError; keep the first lines, not a wall of text
        raise ValueError(f"the receipt does not match {Receipt.current_version()}: "
                         + str(e).splitlines()[0]) from e


def _check_belongs(manifest: Manifest, receipt: Receipt) -> None:
    """A receipt of another run (a result mixed up, a file copied by hand) must never finish this one."""
    if (receipt.run_id, receipt.plan.sha256) != (manifest.run_id, manifest.plan_sha256):
        raise ValueError(f"the receipt belongs to run `{receipt.run_id}` (plan {receipt.plan.sha256[:12]}), "
                         f"not to this run `{manifest.run_id}` (plan {manifest.plan_sha256[:12]})")


def finish_from_receipt(manifest: Manifest, receipt: Receipt) -> Manifest:
    """The terminal manifest a stored receipt implies; never `ok` with a loss that is not a number."""
    if receipt.status == "ok" and receipt.non_finite_loss():
        return advance(manifest, "error", receipt=RECEIPT_FILE, error=ManifestError(
            stage="remote", message=f"the receipt says `ok`, but a loss is not a number ({receipt.non_finite_loss()}): "
                                    "a run whose loss is not finite did not succeed"))
    if receipt.status != "error":  # ok, interrupted, diverged: the run's own word for how it ended
        return advance(manifest, receipt.status, receipt=RECEIPT_FILE)
    return advance(manifest, "error", receipt=RECEIPT_FILE, error=triage_error(receipt))


# The runtime names the stage a rank was in; the manifest names who owns the fix.
_TRIAGE_STAGE = {"bootstrap": "bootstrap", "receipt": "record"}


def triage_error(receipt: Receipt) -> ManifestError:
    """The manifest's typed error for a failed receipt: runtime stage -> triage stage."""
    err = receipt.error
    if err is None:
        return ManifestError(stage="record", message=f"the receipt says `{receipt.status}` but carries no error")
    where = f" at step {err.step}" if err.step is not None else ""
    return ManifestError(stage=_TRIAGE_STAGE.get(err.stage, "remote"), rank=err.rank, error_file=err.error_file,
                    message=f"{err.code} in stage `{err.stage}`{where}: {err.message}")
