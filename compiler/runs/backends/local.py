"""The local backend: run a Plan on this machine through the runtime's elastic launcher.

`runs/<run-id>/` gets plan.json, manifest.json and receipt.json; the runtime writes per-rank logs
and error files into the same directory. The manifest goes `planned -> running -> ok | error`,
or `interrupted` on Ctrl-C or SIGTERM. torch is imported only here, inside the function, via the runtime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from megaspec.runtime.contract.rundir import LAUNCHER_CLAIM, MANIFEST_FILE, PLAN_FILE, RECEIPT_FILE

from ..local_process import end_if_orphaned, living_ranks, this_process
from ..manifest import (
    BackendError,
    Manifest,
    ManifestError,
    advance,
    new_manifest,
    read_manifest,
    store_receipt,
    store_receipt_file,
    write_manifest,
)

EventSink = Callable[[dict], None]


class _ShutdownChatter(logging.Filter):
    """torch elastic's per-worker lines on Ctrl-C/SIGTERM ("Received 2 death signal", "Closing process
    ... via signal"): the `interrupted: manifest ...` line says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not ("death signal, shutting down workers" in text or " via signal SIG" in text)


def _quiet_shutdown() -> None:
    for name in ("torch.distributed.elastic.agent.server.api", "torch.distributed.elastic.multiprocessing.api"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ShutdownChatter) for f in logger.filters):
            logger.addFilter(_ShutdownChatter())


def run(plan, run_dir: Path, *, on_event: EventSink | None = None, resume: bool = False,
        announce: Callable[[], None] | None = None) -> Manifest:
    """Run `plan` to completion; returns the terminal manifest (Ctrl-C: `interrupted`). `resume`:
    the run dir holds an earlier attempt (see `resumable`), whose manifest and files are archived.
    The run directory is claimed for the whole run: a second launcher in it is refused. `announce`
    is called once the run's manifest exists. A signal at any moment (Ctrl-C, SIGTERM, SIGHUP:
    `KeyboardInterrupt`) ends the manifest `interrupted` before it propagates."""
    from megaspec.runtime.contract.claim import Claimed, claim
    from megaspec.runtime.contract.errors import describe_storage, storage_error
    from megaspec.runtime.contract.files import release_reserve

    run_dir = Path(run_dir)  # run_plan writes plan.json, progress, logs and the receipt here
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with claim(run_dir / LAUNCHER_CLAIM):
            try:
                return _run_claimed(plan, run_dir, on_event, resume, announce)
            except KeyboardInterrupt as e:
                end_interrupted(plan, run_dir, e)
                raise
            finally:
                release_reserve(run_dir)
    except Claimed as e:
        raise BackendError(f"`{run_dir}` is in use: another launcher (pid {e.holder or '?'}) trains in it; "
                           "nothing was run", hint="Wait for it to end, or end it, then resume") from None
    except OSError as e:  # the run folder or its first files could not be written: nothing ran
        if storage_error(e) is None:
            raise
        raise BackendError(f"MS815: the run folder could not be written: {describe_storage(storage_error(e))}; "
                           "nothing was run", hint="Free space or fix the folder's permissions (`--runs-dir` "
                           "elsewhere), then apply again") from None
    except KeyboardInterrupt as e:  # before the claim: a folder this launch just made, without a manifest
        if not (run_dir / MANIFEST_FILE).exists():
            end_interrupted(plan, run_dir, e)
        raise


def _run_claimed(plan, run_dir: Path, on_event: EventSink | None, resume: bool,
                 announce: Callable[[], None] | None) -> Manifest:
    from megaspec.runtime.contract.errors import deadline, describe_storage
    from megaspec.runtime.contract.files import reserve_space
    from megaspec.runtime.contract.rundir import archive_previous_attempt
    from megaspec.runtime.contract.seed_file import seed_missing
    from megaspec.runtime.launch.fork_server import start_fork_server

    if resume:
        archive_previous_attempt(run_dir, extra=(MANIFEST_FILE,))
    reserve_space(run_dir)  # given up on a full disk for the receipt and the last manifest; removed at the end
    manifest = new_manifest(plan, backend="local")
    write_manifest(run_dir, manifest)
    if announce:
        announce()
    missing = seed_missing(plan)
    if missing is not None:  # refused before the fork server and torch start (seconds, 30 under load), not at MS807 there
        manifest = advance(manifest, "error", error=ManifestError(stage="bootstrap", message=f"MS807: {missing}"))
        write_manifest(run_dir, manifest)
        return manifest
    notes = [_again_note(plan, run_dir)] if resume else []
    timeout_s = plan.resources.timeout_s
    try:  # from here on, whatever fails ends the manifest (it never stays `planned` or `running`)
        start_fork_server()  # its import of the rank code overlaps the launcher's import of torch below
        from megaspec.runtime.launch.entry import run_plan

        _quiet_shutdown()
        manifest = advance(manifest, "running", process=this_process(), notes=notes)
        write_manifest(run_dir, manifest)
        with deadline(timeout_s, f"`resources.timeout` ({timeout_s} s) on this machine"):
            receipt = run_plan(plan, run_dir, on_event=on_event)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - the launcher itself failed; rank 0 may still have left a receipt
        manifest = _after_launcher_failure(run_dir, manifest, e)
    else:
        manifest = store_receipt(run_dir, manifest, receipt, source="the launcher's receipt")
    try:
        write_manifest(run_dir, manifest)
    except OSError as e:
        raise BackendError(f"MS815: the run ended `{manifest.state}` but its manifest could not be written: "
                           f"{describe_storage(e)}", hint="Free space or fix the folder's permissions; "
                           "`megaspec receipts show` reads the receipt when it was written") from None
    return manifest


def end_interrupted(plan, run_dir: Path, interrupt: KeyboardInterrupt) -> Manifest | None:
    """The run's manifest ended `interrupted` by a signal, whatever it had reached (a new one when the
    signal came before it was written); None when the run folder was never created."""
    if not run_dir.is_dir():
        return None
    try:
        manifest = read_manifest(run_dir)
    except (OSError, ValueError):
        manifest = new_manifest(plan, backend="local")
    if not manifest.is_terminal:
        manifest = _interrupted(run_dir, manifest, interrupt)
        write_manifest(run_dir, manifest)
    return manifest


def _again_note(plan, run_dir: Path) -> str:
    """What a new attempt in a used run directory starts from: its latest complete checkpoint, or step 0."""
    from megaspec.runtime.contract.checkpoint_dirs import complete_steps, root_for

    root = root_for(plan, run_dir)
    steps = complete_steps(root) if root is not None and plan.checkpoint.resume == "auto" else []
    start = f"from its checkpoint at step {steps[-1]}" if steps else "from step 0 (no complete checkpoint)"
    return f"resumed in this run directory {start}; the earlier attempt is in attempts/"


def resumable(plan, run_dir: Path):
    """The plan of the local run in `run_dir`, when `plan` may continue it there: the same plan hash
    (the same spec and flags), not still running, and a complete checkpoint to continue from.
    Otherwise a `BackendError` saying why."""
    from megaspec.runtime.contract.checkpoint_dirs import complete_steps, root_for
    from megaspec.runtime.contract.claim import holder_of
    from megaspec.runtime.contract.plan import read_plan

    if plan.target != "local":
        raise BackendError("`--resume` continues a local run in its run directory",
                           hint="A Modal run resumes from its checkpoints Volume (`checkpoint.resume: auto`): "
                                "apply the spec again")
    try:
        previous, manifest = read_plan(run_dir / PLAN_FILE), read_manifest(run_dir)
    except (OSError, ValueError) as e:
        raise BackendError(f"`{run_dir}` is not a run directory `megaspec apply` wrote: {e}",
                           hint="Name a folder under the runs directory, e.g. `runs/<run-id>`") from e
    if previous.sha256() != plan.sha256():
        raise BackendError(f"`{run_dir}` ran another plan (sha256 {previous.sha256()[:12]}; this spec "
                           f"gives {plan.sha256()[:12]}): resuming would mix two experiments",
                           hint="Resume with the spec and flags (`--steps`, `--target`) of that run, or apply "
                                "without `--resume` to start a new run")
    holder = holder_of(run_dir / LAUNCHER_CLAIM)
    if holder:
        raise BackendError(f"`{run_dir}` is in use: its launcher (pid {holder}) still trains in it",
                           hint="Wait for it to end, or end it, then resume")
    if not end_if_orphaned(run_dir, manifest).is_terminal or living_ranks(run_dir):
        who = ", ".join(living_ranks(run_dir)) or f"pid {manifest.process.pid if manifest.process else '?'}"
        raise BackendError(f"`{run_dir}` is still running ({who})", hint="Wait for it to end, or end it, then resume")
    if manifest.state == "ok":
        raise BackendError(f"`{run_dir}` ended ok: all {previous.train.steps} steps ran; there is nothing to resume",
                           hint="Apply the spec without `--resume` for a new run (`--steps` for a longer one)")
    root = root_for(previous, run_dir)
    if previous.checkpoint.resume != "auto" or root is None or not complete_steps(root):
        raise BackendError(f"`{run_dir}` has no complete checkpoint to resume from",
                           hint="Set `checkpoint.every` (and `checkpoint.resume: auto`), then apply without "
                                "`--resume` to start a new run")
    return previous


def _interrupted(run_dir: Path, manifest: Manifest, interrupt: KeyboardInterrupt) -> Manifest:
    """`interrupted`, noting the signal and where each rank was (the receipt's error says both)."""
    from megaspec.runtime.contract.errors import Interrupted, signal_name, signal_of

    found = (run_dir / RECEIPT_FILE).exists()  # the launcher's own interrupt says what stopped it (a timeout too)
    said = str(interrupt) if isinstance(interrupt, Interrupted) else \
        f"the launcher received {signal_name(signal_of(interrupt))}"
    if not found:
        said += " before it started the ranks" if manifest.state == "planned" else " (no receipt was written)"
    return advance(manifest, "interrupted", receipt=RECEIPT_FILE if found else None,
                   notes=[*manifest.notes, f"interrupted on this machine: {said}"])


def _after_launcher_failure(run_dir: Path, manifest: Manifest, error: Exception) -> Manifest:
    """A receipt rank 0 wrote before the launcher died says more than the launcher's exception."""
    receipt_path = run_dir / RECEIPT_FILE
    if receipt_path.exists():
        return store_receipt_file(run_dir, manifest, receipt_path)
    from megaspec.runtime.contract.errors import describe_storage, storage_error

    storage = storage_error(error)
    if storage is not None:
        message = f"MS815: the launcher could not write: {describe_storage(storage)}; no receipt was written"
        return advance(manifest, "error", error=ManifestError(stage="persistence", message=message))
    message = f"the local launcher failed before any receipt was written: {type(error).__name__}: {error}"
    return advance(manifest, "error", error=ManifestError(stage="bootstrap", message=message))
