"""The per-rank status files' format: `ranks/rank-<r>.json`, one per rank, each holding that rank's last
known phase and what it measured (`rank/status.py` writes them as a `RankState`). The launcher reads
them to name the rank that caused a hang and to fill the receipt's per-rank section; `status` and
`collect` to say how far an orphaned local run got.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from .codes import RuntimeCode
from .files import UnreadableFile, read_json
from .receipt import STAGES
from .rundir import rank_status_files

PHASE_ORDER = {phase: order for order, phase in enumerate((*STAGES, "done"))}
Count = Annotated[StrictInt, Field(ge=0, lt=1 << 62)]


class RankError(BaseModel):
    """The typed error a failing rank records before it exits (`launch/rank_main.py`)."""

    model_config = ConfigDict(extra="ignore")

    code: RuntimeCode
    stage: str  # the rank stage it failed in (`RankStage`), or where its phase was
    step: int | None = None
    failed_ns: int = 0
    message: str = ""


class RankState(BaseModel):
    """One rank's status: every field but `rank` has a default, so a rank that stopped early still reads."""

    model_config = ConfigDict(extra="ignore")

    rank: Count
    local_rank: int = 0
    pid: Count | None = None  # positive: `status` signals it (0) to see whether it still runs
    host: str | None = None
    phase: str = "bootstrap"  # a `RankStage`, then "done"
    last_step: Count = 0
    started_ns: int | None = None
    updated_ns: int | None = None
    phase_ns: dict[str, int] = Field(default_factory=dict)
    device: str | None = None
    observed_devices: list[str] | None = None
    first_forward_s: float | None = None
    first_step_s: float | None = None
    steady_step_s: float | None = None
    compiled: bool | None = None
    cache: dict[str, Any] | None = None  # `state/cachestate.py`'s report
    peak_mem_gib: float | None = None
    error: RankError | None = None
    traceback: str | None = None

    def progress(self) -> tuple[int, int]:
        """How far the rank got: (last completed step, phase order). The laggard has the smallest."""
        return self.last_step, PHASE_ORDER.get(self.phase, 0)

    def failing_step(self) -> int | None:
        """The step the rank was working on when it stopped; None once training was over. In `checkpoint`
        after step N, that is N: the rank was saving it (at the start, loading: the step after the last)."""
        if self.phase in ("receipt", "teardown", "done"):
            return None
        return self.last_step if self.phase == "checkpoint" and self.last_step > 0 else self.last_step + 1

    def report(self, error_file: str | None, log_dir: str | None) -> dict[str, Any]:
        """The receipt's per-rank entry (a RankReport's fields)."""
        first, steady = self.first_step_s, self.steady_step_s
        compile_s = max(0.0, first - steady) if self.compiled and first and steady else None
        return {"rank": self.rank, "host": self.host, "pid": self.pid, "phase": self.phase,
                "last_step": self.last_step, "device": self.device, "first_forward_s": self.first_forward_s,
                "first_step_s": first, "compile_s": compile_s,
                "cache": self.cache if self.cache and "state" in self.cache else None,
                "peak_mem_gib": self.peak_mem_gib, "error_file": error_file, "log_dir": log_dir}


def read_statuses(run_dir: str | Path) -> dict[int, RankState]:
    """All ranks' status files by rank, through the bounded reader; a file that is unreadable (a rank
    killed mid-write) or not a `RankState` is skipped."""
    out: dict[int, RankState] = {}
    for path in rank_status_files(run_dir):
        try:
            state = RankState.model_validate(read_json(path, "rank status"))
        except (UnreadableFile, ValidationError):
            continue
        out[state.rank] = state
    return out
