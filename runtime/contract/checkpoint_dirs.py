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


def write_checksums(folder: Path, lineage_key: str | None = None) -> None:
    """Record the sha256 of every file of a finished DCP save, beside them, and the `lineage` of the run
    that saved it."""
    sums = {p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS_FILE}
    record = {"sha256": sums, **({"lineage": lineage_key} if lineage_key else {})}
    write_text_atomic(folder / CHECKSUMS_FILE, json.dumps(record, indent=1, sort_keys=True))


# What a checkpoint's weights are a function of, besides the model and the data (`lineage`).
LINEAGE_TRAIN = ("global_batch", "seq_len", "lr", "min_lr_ratio", "lr_warmup_steps", "weight_decay", "grad_clip",
                 "precision", "seed")


def lineage(plan: Plan) -> str:
    """The sha256 of what a checkpoint's weights are a function of: the model (a preset's shape, or the
    user's entry, args, code sha256 and vocabulary), the data (source, path, token type) and the
    optimization (LINEAGE_TRAIN: batch, sequence length, the learning-rate schedule but its length,
    weight decay, clipping, precision, seed). A run that only runs longer (`train.steps`), elsewhere or
    on other hardware continues a checkpoint's lineage; one that changes any of these would train its
    weights under other settings (a Modal run's checkpoint folder is named after the spec, so a changed
    spec applied again finds the previous experiment's checkpoints there)."""
    model = plan.model.model_dump(mode="json", exclude={"num_params": True, "flops_per_token": True,
                                                         "user": {"code"}})
    data = plan.data.model_dump(mode="json", include={"source", "path", "dtype"})
    train = plan.train.model_dump(mode="json", include=set(LINEAGE_TRAIN))
    body = json.dumps({"model": model, "data": data, "train": train}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def lineage_of(folder: Path) -> str | None:
    """The lineage a checkpoint was saved with; None when it records none (saved before lineages) or
    its checksum file is unreadable (`damage` says so)."""
    try:
        found = json.loads((folder / CHECKSUMS_FILE).read_text(encoding="utf-8")).get("lineage")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


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
