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
from ..contract.rank_status import RankState
from ..contract.rundir import rank_status_file
from . import drills


class RankStatus:
    """One rank's status file. `update` sets fields of its `RankState` and rewrites the file at once."""

    def __init__(self, run_dir: str | Path, rank: int, local_rank: int):
        self.path = rank_status_file(run_dir, rank)
        self.state = RankState(rank=rank, local_rank=local_rank, pid=os.getpid(), host=socket.gethostname(),
                               started_ns=time.time_ns())

    def enter(self, phase: str, **fields: Any) -> None:
        """Record that this rank entered `phase` (with a ns timestamp), write the file, then run a
        failure drill that names this rank and phase."""
        self.update(phase=phase, phase_ns={**self.state.phase_ns, phase: time.time_ns()}, **fields)
        drills.fire(self.state.rank, phase)

    def update(self, **fields: Any) -> None:
        unknown = fields.keys() - RankState.model_fields.keys()
        if unknown:
            raise TypeError(f"RankState has no field {sorted(unknown)}")
        self.state = RankState.model_validate({**dict(self.state), **fields, "updated_ns": time.time_ns()})
        durable = "error" in fields or self.state.phase in ("receipt", "teardown", "done")
        text = json.dumps(self.state.model_dump(mode="json", exclude_none=True), indent=1, sort_keys=True)
        write_text_atomic(self.path, text, durable=durable)  # durable=False: the per-step updates
