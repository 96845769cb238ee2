"""Per-rank status files: every rank's last known phase, written atomically at each phase change.

`<run_dir>/ranks/rank-<r>.json` survives a rank that is killed, hangs or never reaches a
collective. The launcher reads them to name the rank that caused a hang (torchrun blames the
rank that waited) and to fill the receipt's per-rank section.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..contract.files import write_text_atomic
from ..contract.receipt import STAGES
from ..contract.rundir import rank_status_file
from . import drills

PHASE_ORDER = {phase: order for order, phase in enumerate((*STAGES, "done"))}


def write_json_atomic(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    """JSON through `files.write_text_atomic`; `durable=False` for the per-step status updates."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True), durable=durable)


class RankStatus:
    """One rank's status file. `update` merges fields and rewrites the file at once."""

    def __init__(self, run_dir: str | Path, rank: int, local_rank: int):
        self.path = rank_status_file(run_dir, rank)
        self.data: dict[str, Any] = {"rank": rank, "local_rank": local_rank, "pid": os.getpid(),
                                     "host": socket.gethostname(), "phase": "bootstrap", "last_step": 0,
                                     "started_ns": time.time_ns(), "phase_ns": {}}

    def enter(self, phase: str, **fields: Any) -> None:
        """Record that this rank entered `phase` (with a ns timestamp), write the file, then run a
        failure drill that names this rank and phase."""
        self.data["phase"] = phase
        self.data["phase_ns"][phase] = time.time_ns()
        self.update(**fields)
        drills.fire(self.data["rank"], phase)

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.data["updated_ns"] = time.time_ns()
        durable = "error" in fields or self.data["phase"] in ("receipt", "teardown", "done")
        write_json_atomic(self.path, self.data, durable=durable)


def progress_of(status: dict[str, Any]) -> tuple[int, int]:
    """How far a rank got: (last completed step, phase order). The laggard has the smallest."""
    return int(status.get("last_step", 0)), PHASE_ORDER.get(status.get("phase", "bootstrap"), 0)


def failing_step(status: dict[str, Any]) -> int | None:
    """The step a rank was working on when it stopped; None once training was over (receipt, teardown)."""
    if status.get("phase") in ("receipt", "teardown", "done"):
        return None
    return int(status.get("last_step", 0)) + 1


def rank_report(status: dict[str, Any], error_file: str | None, log_dir: str | None) -> dict[str, Any]:
    """The receipt's per-rank entry (a RankReport's fields) from one status dict."""
    first, steady = status.get("first_step_s"), status.get("steady_step_s")
    compile_s = max(0.0, first - steady) if status.get("compiled") and first and steady else None
    cache = status.get("cache")
    return {"rank": status["rank"], "host": status.get("host"), "pid": status.get("pid"),
            "phase": status.get("phase", "bootstrap"), "last_step": status.get("last_step", 0),
            "device": status.get("device"), "first_forward_s": status.get("first_forward_s"),
            "first_step_s": first, "compile_s": compile_s,
            "cache": cache if cache and "state" in cache else None, "peak_mem_gib": status.get("peak_mem_gib"),
            "error_file": error_file, "log_dir": log_dir}
