"""The per-rank status files' format, read side: `ranks/rank-<r>.json`, one per rank, each holding that
rank's last known phase (`rank/status.py` writes them). The launcher reads them to name the rank that
caused a hang and to fill the receipt's per-rank section; `status` and `collect` to say how far an
orphaned local run got.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .rundir import rank_status_files


def read_statuses(run_dir: str | Path) -> dict[int, dict[str, Any]]:
    """All ranks' status files by rank; unreadable files are skipped (a rank killed mid-write)."""
    out: dict[int, dict[str, Any]] = {}
    for path in rank_status_files(run_dir):
        try:
            data = json.loads(path.read_text())
            out[int(data["rank"])] = data
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return out
