"""The compile-cache seed's format: what a seed holds, the key it was built for, where it lives, and
the check and restore a `require-seed` run makes before its ranks compile (`train/seed_make.py` makes one).

A seed is a directory (the spec's `cache.seed`):
  seed.json      what it was built for (`SeedKey`: torch, device, model shape, precision, compile
                 settings) and what it holds; written last, so a seed without it is incomplete
  artifacts.bin  torch's own bundle, `torch.compiler.save_cache_artifacts()` after the compile
  inductor/      the seeding process's TORCHINDUCTOR_CACHE_DIR: FX-graph and AOTAutograd entries
                 plus the compiled kernels (C++ `.so` on CPU, Triton on GPU) that the bundle lacks
                 on CPU, where a bundle "hit" still pays the C++ build (measured)

`restore_seed` checks the key against the plan and this machine, then copies `inductor/`
into the run's cache dir; a seed built for anything else is refused before any rank starts.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .artifact import Artifact
from .errors import CacheSeedMismatchError, CacheSeedMissingError
from .files import UnreadableFile
from .plan import Plan

SEED_SCHEMA_VERSION = "megaspec.seed.v1"
SEED_FILE, ARTIFACTS_FILE, INDUCTOR_DIR = "seed.json", "artifacts.bin", "inductor"


class SeedKey(BaseModel):
    """Everything the compiled graphs depend on: a seed is used only where all of it matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    torch: str
    device: str  # "cpu", or the CUDA product name ("NVIDIA H200")
    model: dict[str, Any]  # a preset's dimensions, or the user model's entry, args and code sha256
    micro_batch: int
    seq_len: int
    precision: str
    activation_checkpointing: str
    autotune: bool


class SeedManifest(Artifact):
    model_config = ConfigDict(extra="forbid", frozen=True)
    KIND = "seed manifest"

    schema_version: Literal[SEED_SCHEMA_VERSION] = SEED_SCHEMA_VERSION
    key: SeedKey
    created_at: str
    compile_s: float  # the seeding compile (first forward and backward)
    artifacts_bytes: int
    inductor_files: int


def seed_path(plan: Plan) -> Path | None:
    """Where this plan's seed lives: `cache.seed`. The seeding process (`megaspec cache seed`, locally
    or in the generated one-GPU Modal app) writes it there and the run restores it from there."""
    return Path(plan.cache.seed) if plan.cache.seed else None


def seed_missing(plan: Plan) -> str | None:
    """Why a `require-seed` plan cannot start here (MS807: its seed is not on this machine's disk), or None.
    The local launcher asks before it starts the fork server and imports torch; the runtime asks again."""
    seed = seed_path(plan)
    if plan.cache.policy != "require-seed" or (seed is not None and seed.exists()):
        return None
    return (f"cache.policy is require-seed but the seed `{plan.cache.seed}` does not exist; make it with "
            "`megaspec cache seed SPEC`")


def _model_key(plan: Plan) -> dict:
    """The preset decoder's dimensions; for the user's own model its entry, args and code hash."""
    user = plan.model.user
    if user is not None:
        return {"entry": user.entry, "args": user.args, "code_sha256": user.code_sha256}
    return plan.model.dims().as_dict()


def key_for(plan: Plan, device: str) -> SeedKey:
    t = plan.train
    return SeedKey(torch=_torch_version(), device=device, model=_model_key(plan),
                   micro_batch=t.micro_batch, seq_len=t.seq_len, precision=t.precision,
                   activation_checkpointing=t.activation_checkpointing,
                   autotune=plan.distributed.env.get("TORCHINDUCTOR_MAX_AUTOTUNE") == "1")


def read_seed_manifest(seed_dir: Path) -> SeedManifest:
    """The seed's `seed.json`, its version checked before any other field; a refusal naming the file."""
    path = seed_dir / SEED_FILE
    if not path.is_file():
        raise CacheSeedMissingError(f"`{seed_dir}` holds no compile-cache seed (no {SEED_FILE}); make one "
                                    "with `megaspec cache seed SPEC`", stage="bootstrap")
    try:
        return SeedManifest.read(path)
    except ValueError as e:  # UnreadableFile (another version, not JSON), or pydantic's error for a wrong shape
        reason = e.reason if isinstance(e, UnreadableFile) else str(e).splitlines()[0]
        raise CacheSeedMismatchError(f"`{seed_dir}`'s {SEED_FILE} cannot be read ({reason}): make the seed again "
                                     "with `megaspec cache seed SPEC`", stage="bootstrap") from None


def check_seed(plan: Plan, seed_dir: Path, device: str) -> SeedManifest:
    """The seed's manifest, or a refusal naming every way it differs from this run."""
    manifest = read_seed_manifest(seed_dir)
    want, have = key_for(plan, device).model_dump(), manifest.key.model_dump()
    diffs = [f"{name} {have[name]!r} (this run: {want[name]!r})" for name in want if want[name] != have[name]]
    if diffs:
        raise CacheSeedMismatchError(f"the compile-cache seed `{seed_dir}` was built for another run: "
                                     f"{'; '.join(diffs)}. Make one for this spec with `megaspec cache seed "
                                     "SPEC`", stage="bootstrap")
    return manifest


def restore_seed(plan: Plan, seed_dir: Path, cache_dir: Path, device: str) -> SeedManifest:
    """Launcher side, before any rank starts: check the seed, then copy its cache into `cache_dir`."""
    manifest = check_seed(plan, seed_dir, device)
    shutil.copytree(seed_dir / INDUCTOR_DIR, cache_dir, dirs_exist_ok=True)
    return manifest


def _torch_version() -> str:
    from importlib.metadata import version

    return version("torch")
