"""When a Modal run makes its files visible: the generated app's Volume commits and each node's own paths.

A Modal Volume shows a container's writes to others once it commits; a timeout or a cancel with
`terminate_containers` may end the container before a commit in `finally`. So the generated app
commits after each complete checkpoint too (`VolumeCommits.on_event`, fed by the progress tail),
and again when the run ends, however it ends (a SIGTERM ends `run_plan` with an interrupted receipt,
then the `finally`). Every node commits: each writes only its own paths (its ranks' checkpoint
shards, status files and log folder; the receipt and progress are node 0's), except the compile
cache, which every node would write at the same paths (last write wins, per Modal's docs): a node
other than 0 compiles into a copy of its own (`node_cache_env`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..contract.checkpoint_dirs import complete_steps, root_for
from ..contract.plan import Plan

CACHE_ENV = ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")


class VolumeCommits:
    """Calls `commit` once per newly complete checkpoint under the run's checkpoint dir."""

    def __init__(self, plan: Plan, run_dir: Path, commit: Callable[[], None]):
        self.root, self.commit = root_for(plan, Path(run_dir)), commit
        self.committed_step = max(complete_steps(self.root), default=0) if self.root else 0

    def on_event(self, _event: dict[str, Any]) -> None:
        """A progress event arrived: commit if a checkpoint completed since the last commit."""
        latest = max(complete_steps(self.root), default=0) if self.root else 0
        if latest > self.committed_step:
            self.committed_step = latest
            self.commit()


def node_cache_env(env: dict[str, str], node_rank: int) -> dict[str, str]:
    """The compile-cache variables of node `node_rank`: node 0's as planned; another node's point at a
    container-local copy of it (warm from what node 0's runs left, written by this node alone)."""
    if node_rank == 0 or "TORCHINDUCTOR_CACHE_DIR" not in env:
        return {}
    shared = Path(env["TORCHINDUCTOR_CACHE_DIR"])
    own = Path(tempfile.mkdtemp(prefix=f"megaspec-compile-cache-node{node_rank}-"))
    if shared.is_dir():
        shutil.copytree(shared, own, dirs_exist_ok=True)
    return {key: str(own / Path(env[key]).relative_to(shared)) for key in CACHE_ENV if key in env}
