"""Where a plan's checkpoints live and which of them are complete: the on-disk layout, without torch.

Layout: `<dir>/step-<N>/` (torchtitan's), judged complete by its `.metadata` file (DCP writes it
last, and `checkpoint.save` renames a finished temp dir into place). Each checkpoint also carries
the sha256 of each of its files (`megaspec.sha256.json`, written after the DCP save, before the
rename), so a damaged one (flipped bytes, a truncated or deleted shard, a damaged `.metadata`) is
known before it is loaded. The launcher, the receipt and `apply --resume` read this layout without
importing DCP (and the DTensor and sympy it pulls in).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from .files import write_text_atomic
from .plan import Plan

_STEP_DIR = re.compile(r"^step-(\d+)$")
TMP_PREFIX = ".tmp-step-"  # a checkpoint being written; renamed to `step-<N>` once complete
CHECKSUMS_FILE = "megaspec.sha256.json"


def step_dir(root: Path, step: int) -> Path:
    return root / f"step-{step}"


def tmp_dir(root: Path, step: int) -> Path:
    return root / f"{TMP_PREFIX}{step}"


def remove_unfinished(root: Path | None) -> list[Path]:
    """Remove the temp dirs of saves that never finished (a kill mid-save); the ones removed."""
    found = sorted(root.glob(f"{TMP_PREFIX}*")) if root is not None and root.is_dir() else []
    for path in found:
        shutil.rmtree(path, ignore_errors=True)
    return found


def write_checksums(folder: Path) -> None:
    """Record the sha256 of every file of a finished DCP save, beside them."""
    sums = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS_FILE}
    write_text_atomic(folder / CHECKSUMS_FILE, json.dumps({"sha256": sums}, indent=1, sort_keys=True))


def damage(folder: Path) -> str | None:
    """What is wrong with a checkpoint's files, or None when each matches its recorded sha256 (a
    checkpoint written before checksums has none to check)."""
    listing = folder / CHECKSUMS_FILE
    if not listing.exists():
        return None
    try:
        sums = json.loads(listing.read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"its checksum file `{listing}` is unreadable ({type(exc).__name__})"
    for name, expected in sorted(sums.items()):
        path = folder / name
        if not path.is_file():
            return f"`{path}` is missing"
        if _sha256(path) != expected:
            return f"`{path}` does not match its sha256 (damaged or truncated)"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def root_for(plan: Plan, run_dir: Path) -> Path | None:
    """The plan's checkpoint dir; a relative one lives in the run dir (local rehearsals)."""
    return None if plan.checkpoint.dir is None else run_dir / plan.checkpoint.dir  # absolute replaces run_dir


def complete_steps(root: Path) -> list[int]:
    """Steps with a complete checkpoint (a `.metadata` file), ascending."""
    if not root.is_dir():
        return []
    found = (_STEP_DIR.match(p.name) for p in root.iterdir() if (p / ".metadata").is_file())
    return sorted(int(m.group(1)) for m in found if m)
