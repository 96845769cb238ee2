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

from ..contract import seed_file as seedfile
from ..contract.errors import CacheSeedMismatchError, CacheSeedMissingError
from ..contract.plan import Plan

SUBDIRS = ("fxgraph", "aotautograd")


def cache_dir_for(plan: Plan, run_dir: Path) -> Path:
    """The plan's cache dir (a relative one lives in the run dir), or `compile-cache` in the run dir."""
    return run_dir / (plan.cache.dir or "compile-cache")  # an absolute plan.cache.dir replaces run_dir


def restore_seed_dir(plan: Plan, cache_dir: Path) -> bool:
    """Launcher side, before spawning: restore the seed into the cache dir. True if restored.

    A seed made by `megaspec cache seed` (a `seed.json` inside) is checked against this run first;
    `require-seed` with no seed, or with one built for another run, fails here, before any GPU time
    is spent training (MS807, MS812).
    """
    seed = seedfile.seed_path(plan)
    missing = seedfile.seed_missing(plan)
    if missing is not None:
        raise CacheSeedMissingError(missing, stage="bootstrap")
    if plan.cache.policy == "cold" or seed is None or not seed.is_dir():
        return False
    if (seed / seedfile.SEED_FILE).is_file() or plan.cache.policy == "require-seed":
        return _restore_made_seed(plan, seed, cache_dir)
    shutil.copytree(seed, cache_dir, dirs_exist_ok=True)  # `warm` from a plain cache directory
    return True


def _restore_made_seed(plan: Plan, seed: Path, cache_dir: Path) -> bool:
    from ..rank.provenance import observed_devices

    try:
        device = "cpu" if plan.distributed.device == "cpu" else observed_devices()[0]
        seedfile.restore_seed(plan, seed, cache_dir, device)
    except CacheSeedMismatchError:
        if plan.cache.policy == "require-seed":
            raise
        return False  # `warm`: a seed for another run is not used, and not an error
    return True


def load_seed_artifacts(plan: Plan) -> bool:
    """Rank side, before compiling: load a mega-cache file (torch.compiler.save_cache_artifacts)."""
    seed = seedfile.seed_path(plan)
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
