"""Where a plan's checkpoints live and which of them are complete: the on-disk layout, without torch.

Layout: `<dir>/step-<N>/` (torchtitan's), judged complete by its `.metadata` file (DCP writes it
last, and `checkpoint.save` renames a finished temp dir into place). The launcher, the receipt and
`apply --resume` read this layout without importing DCP (and the DTensor and sympy it pulls in).
"""

from __future__ import annotations

import re
from pathlib import Path

from .plan import Plan

_STEP_DIR = re.compile(r"^step-(\d+)$")


def root_for(plan: Plan, run_dir: Path) -> Path | None:
    """The plan's checkpoint dir; a relative one lives in the run dir (local rehearsals)."""
    return None if plan.checkpoint.dir is None else run_dir / plan.checkpoint.dir  # absolute replaces run_dir


def complete_steps(root: Path) -> list[int]:
    """Steps with a complete checkpoint (a `.metadata` file), ascending."""
    if not root.is_dir():
        return []
    found = (_STEP_DIR.match(p.name) for p in root.iterdir() if (p / ".metadata").is_file())
    return sorted(int(m.group(1)) for m in found if m)
