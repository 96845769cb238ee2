"""Sweep manifests: one launched set of runs, `runs/<sweep-id>/sweep.json`, beside its run directories.

`apply TEMPLATE` (or `apply DIR`) writes it before the first run starts: the template and its
sha256, the matrix, and for each run its name, swept values, run id, spec file and state. Each run
keeps its own `manifest.json` in `runs/<sweep-id>/<run-id>/`, which stays the truth about that run;
the states here are refreshed from those manifests whenever a command reads the sweep, and written
atomically, so a sweep interrupted anywhere still says which runs exist and where.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from megaspec.runtime.contract.artifact import Artifact
from megaspec.runtime.contract.claim import Claimed, claim
from megaspec.runtime.contract.files import write_text_atomic
from megaspec.runtime.contract.rundir import MANIFEST_FILE, RECEIPT_FILE
from megaspec.runtime.contract.vocabulary import Target

from .. import __version__
from .manifest import TERMINAL_STATES, BackendError, State, read_manifest

SCHEMA_VERSION = "megaspec.sweep.v1"
SWEEP_FILE = "sweep.json"
SWEEP_CLAIM = ".sweep.claim"  # claimed to launch queued runs and to write sweep.json (`runs/sweep_launch.py`)
IN_FLIGHT_STATES: frozenset[str] = frozenset({"detached", "running"})

Scalar = str | int | float | bool


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SweepRunEntry(_Frozen):
    name: str
    values: dict[str, Scalar]  # matrix key -> this run's value ({} for a run of a folder)
    spec: str  # the run's own spec file
    run_id: str
    run_dir: str  # a folder of the sweep directory: one plain name
    app: str | None = None  # where apply wrote the run's app; a later launch renders it there again (inside the project)
    state: State = "planned"

    @field_validator("run_dir")
    @classmethod
    def _one_folder(cls, value: str) -> str:
        """A sweep.json edited to name `../elsewhere` or `/abs` must not send a reader outside the sweep."""
        if value in ("", ".", "..") or "/" in value or "\\" in value or "\x00" in value:
            raise ValueError(f"run_dir must be the name of a folder in the sweep directory, not {value[:80]!r}")
        return value


class SweepManifest(_Frozen, Artifact):
    KIND = "sweep manifest"

    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION
    megaspec_version: str = __version__
    sweep_id: str
    source: str  # the template file, or the folder of specs
    source_sha256: str | None  # of the template's bytes; None for a folder
    matrix: dict[str, list[Scalar]] = Field(default_factory=dict)
    target: Target
    max_parallel: int | None = None
    objective: dict[str, str] | None = None  # {"metric": ..., "goal": "min" | "max"} from the template
    created_at: str
    runs: list[SweepRunEntry]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for run in self.runs:
            out[run.state] = out.get(run.state, 0) + 1
        return out

    @property
    def is_finished(self) -> bool:
        return all(run.state in TERMINAL_STATES for run in self.runs)


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / SWEEP_FILE).is_file()


def write_sweep(sweep_dir: Path, sweep: SweepManifest) -> Path:
    return write_text_atomic(Path(sweep_dir) / SWEEP_FILE, sweep.model_dump_json(indent=2) + "\n")


def read_sweep(path: str | Path) -> SweepManifest:
    """Read a sweep manifest (the sweep directory or the file), checking its schema version first;
    BackendError (shown as `error:` + `help:`) when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        path = path / SWEEP_FILE
    try:
        return SweepManifest.read(path)
    except (ValueError, OSError) as e:  # pydantic's and json's errors are ValueErrors
        first = str(e).splitlines()[0]
        raise BackendError(f"cannot read the sweep manifest `{path}`: {first}",
                           hint="It was written by another megaspec version or edited by hand; the runs' own "
                                f"directories ({MANIFEST_FILE}, {RECEIPT_FILE}) are intact") from e


def with_states(sweep: SweepManifest, states: dict[str, str]) -> SweepManifest:
    """The sweep with the runs named in `states` (run id -> state) moved; validated once."""
    runs = [r.model_copy(update={"state": states[r.run_id]}) if r.run_id in states else r for r in sweep.runs]
    return SweepManifest.model_validate({**dict(sweep), "runs": runs})


def refresh(sweep_dir: Path, *, claimed: bool = False) -> SweepManifest:
    """The sweep with every run's state read from its own manifest; rewritten when anything moved, by
    the process holding the sweep's claim (`claimed`: this one; else it is taken for the write, and
    left to its holder when another process has it: that one writes what it sees last)."""
    sweep_dir = Path(sweep_dir)
    sweep = read_sweep(sweep_dir)
    moved = {}
    for run in sweep.runs:
        try:
            state = read_manifest(sweep_dir / run.run_dir / MANIFEST_FILE).state
        except ValueError:  # missing or unreadable: status and report say so for that run
            continue
        if state != run.state:
            moved[run.run_id] = state
    if not moved:
        return sweep
    fresh = with_states(sweep, moved)
    if claimed:
        write_sweep(sweep_dir, fresh)
        return fresh
    try:
        with claim(sweep_dir / SWEEP_CLAIM):
            return refresh(sweep_dir, claimed=True)  # read again: the last holder may have written meanwhile
    except Claimed:
        return fresh
