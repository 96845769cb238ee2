"""The per-rank status files' format, read side: `ranks/rank-<r>.json`, one per rank, each holding that
rank's last known phase (`rank/status.py` writes them). The launcher reads them to name the rank that
caused a hang and to fill the receipt's per-rank section; `status` and `collect` to say how far an
orphaned local run got.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .files import UnreadableFile, read_json
from .rundir import rank_status_files


def read_statuses(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """All ranks' status files by rank, through the bounded reader; a file that is unreadable (a rank
    killed mid-write) or not of a status's shape (`is_status`) is skipped."""
    out: dict[int, dict[str, Any]] = {}
    for path in rank_status_files(run_dir):
        try:
            data = read_json(path, "rank status")
        except UnreadableFile:
            continue
        if is_status(data):
            out[data["rank"]] = data
    return out


def is_status(data: Any) -> bool:
    """An object with a count `rank`, and a count `last_step` and a text `phase` where present."""
    def count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62

    return (isinstance(data, dict) and count(data.get("rank")) and count(data.get("last_step", 0))
            and isinstance(data.get("phase", ""), str))
