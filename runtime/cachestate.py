"""Compile-cache state: restore a seed, judge cold | warm | seeded from real files, count hits.

The 8-GPU first-collective hang is ranks reaching the first compiled collective at different
times because some compiled cold. So the receipt keeps, per rank, what was in
TORCHINDUCTOR_CACHE_DIR before compiling and what step 1 hit, and flags ranks that disagree.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .errors import CacheSeedMissingError
from .plan import Plan

SUBDIRS = ("fxgraph", "aotautograd")


def cache_dir_for(plan: Plan, run_dir: Path) -> Path:
    """The plan's cache dir (a relative one lives in the run dir), or `compile-cache` in the run dir."""
    return run_dir / (plan.cache.dir or "compile-cache")  # an absolute plan.cache.dir replaces run_dir


def restore_seed_dir(plan: Plan, cache_dir: Path) -> bool:
    """Launcher side, before spawning: copy a seed directory into the cache dir. True if restored.

    `require-seed` with no usable seed fails here, before any GPU time is spent training.
    """
    seed = Path(plan.cache.seed) if plan.cache.seed else None
    if plan.cache.policy == "require-seed" and (seed is None or not seed.exists()):
        raise CacheSeedMissingError(f"cache.policy is require-seed but the seed `{plan.cache.seed}` does not"
                                    " exist; warm the cache with a diagnostic run first", stage="bootstrap")
    if plan.cache.policy == "cold" or seed is None or not seed.is_dir():
        return False
    shutil.copytree(seed, cache_dir, dirs_exist_ok=True)
    return True


def load_seed_artifacts(plan: Plan) -> bool:
    """Rank side, before compiling: load a mega-cache file (torch.compiler.save_cache_artifacts)."""
    seed = Path(plan.cache.seed) if plan.cache.seed else None
    if plan.cache.policy == "cold" or seed is None or not seed.is_file():
        return False
    import torch

    torch.compiler.load_cache_artifacts(seed.read_bytes())
    return True


def count_cache_files(cache_dir: str | os.PathLike) -> dict[str, int]:
    root = Path(cache_dir)
    return {s: sum(len(files) for _, _, files in os.walk(root / s)) for s in SUBDIRS}


def judge_state(pre_files: dict[str, int], seeded: bool) -> str:
    if seeded:
        return "seeded"
    return "warm" if any(pre_files.values()) else "cold"


def hit_counters() -> dict[str, int]:
    """Inductor FX-graph and AOTAutograd cache hits/misses so far in this process."""
    from torch._dynamo.utils import counters

    return {"fxgraph_hits": counters["inductor"]["fxgraph_cache_hit"],
            "fxgraph_misses": counters["inductor"]["fxgraph_cache_miss"],
            "aot_hits": counters["aot_autograd"]["autograd_cache_hit"],
            "aot_misses": counters["aot_autograd"]["autograd_cache_miss"]}


def agreed_state(per_rank: list[dict[str, Any]]) -> tuple[str, bool]:
    """The run's cache state and whether every rank agrees ("mixed" when not)."""
    states = {r["state"] for r in per_rank} or {"uncompiled"}
    if len(states) == 1:
        return states.pop(), True
    return "mixed", False
