"""Making a compile-cache seed (`megaspec cache seed`): the plan's model compiled on one device in a
new process, as a rank compiles it, saved in the seed format of `contract/seed_file.py`.

`make_seed` compiles the plan's model exactly as a rank does (AC, per-block compile, FSDP2, the
same micro-batch shape and precision) in a one-rank process group, runs one forward and backward,
and saves.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..contract.files import write_text_atomic
from ..contract.plan import Plan
from ..contract.seed_file import ARTIFACTS_FILE, INDUCTOR_DIR, SEED_FILE, SeedManifest, key_for, seed_path


def make_seed(plan: Plan, seed_dir: Path) -> SeedManifest:
    """Compile the plan's model on one device and write the seed directory (replacing an old one)."""
    staging = seed_dir.with_name(f".{seed_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / INDUCTOR_DIR).mkdir(parents=True)
    try:
        manifest = _compile_into(plan, staging)
        write_text_atomic(staging / SEED_FILE, manifest.model_dump_json(indent=2) + "\n")
        _replace_dir(staging, seed_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


class SeedNotMade(Exception):
    """The seeding process failed: its exit status and the last lines it wrote say why."""


def make_seed_in_new_process(plan: Plan, seed_dir: Path, tail_lines: int = 5) -> SeedManifest:
    """`make_seed` in a new Python process (`python -m megaspec.runtime.train.seed_make`), which is how every
    seed is made, here or in the Modal seeding app: torch's compile state must be this plan's alone.
    In a process that compiled before, Dynamo has marked sizes dynamic and the seed would hold other
    graphs (or fail: SDPA's `enable_gqa` as a SymBool); Inductor reads its cache dir from the
    environment. The child gets this process's `sys.path`, so it imports the same megaspec."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-m", "megaspec.runtime.train.seed_make", "-", str(seed_dir)], input=plan.to_json(),
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-tail_lines:])
        raise SeedNotMade(f"the seed was not made (the compile process exited {proc.returncode}):\n{tail}")
    return SeedManifest.from_json(proc.stdout.strip().splitlines()[-1])


def _compile_into(plan: Plan, staging: Path) -> SeedManifest:
    cache_dir = staging / INDUCTOR_DIR
    os.environ.update(plan.distributed.env)
    os.environ.update({"TORCHINDUCTOR_CACHE_DIR": str(cache_dir), "TRITON_CACHE_DIR": str(cache_dir / "triton")})
    import torch
    import torch.distributed as dist

    device = _device(plan)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.HashStore(), rank=0,
                            world_size=1)
    try:
        compile_s = _one_step(plan, device)
        artifacts = torch.compiler.save_cache_artifacts()
    finally:
        dist.destroy_process_group()
    blob = artifacts[0] if artifacts else b""
    (staging / ARTIFACTS_FILE).write_bytes(blob)
    from ..contract.clock import utc_now
    from ..rank.provenance import device_name

    return SeedManifest(key=key_for(plan, device_name(device)), created_at=utc_now(), compile_s=round(compile_s, 3),
                        artifacts_bytes=len(blob), inductor_files=sum(len(f) for _, _, f in os.walk(cache_dir)))


def _device(plan: Plan) -> Any:
    """The device a rank of this plan uses, with the CPU threads a rank gets (Inductor's C++ kernels
    are built for the thread count they run with)."""
    import torch

    if plan.distributed.device == "cuda":
        torch.cuda.set_device(0)
        return torch.device("cuda", 0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // plan.distributed.nproc_per_node))
    return torch.device("cpu")


def _one_step(plan: Plan, device: Any) -> float:
    """One forward and backward of one micro-batch, the way a rank runs it: the compile happens here."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh

    from ..state.data import SyntheticTokens
    from .model import build_model, cross_entropy
    from .parallel import parallelize
    from .user_model import materialize, prepare

    mesh = init_device_mesh(device.type, (1,))
    if plan.model.user is None:
        model, _ = parallelize(build_model(plan.model.dims(), plan.train.seed, device), plan, mesh)
    else:  # the user's model, built, sharded and initialized as a rank does it
        user = prepare(plan)
        model, _ = parallelize(user.model, plan, mesh)
        materialize(user, plan, device)
    rows = SyntheticTokens(plan.model.vocab_size, plan.train.seq_len, plan.train.seed).rows(0, plan.train.micro_batch)
    rows = rows.to(device)
    start = time.perf_counter()
    cross_entropy(model(rows[:, :-1]), rows[:, 1:]).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _replace_dir(new: Path, target: Path) -> None:
    """Swap a finished seed into place; the old one is removed only after the new one is there."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m megaspec.runtime.train.seed_make PLAN_JSON|- [SEED_DIR]` (`-`: the plan on stdin; SEED_DIR:
    default `seed_path(plan)`): what `megaspec cache seed` runs. The last stdout line is the seed's manifest."""
    import sys

    from ..contract.plan import read_plan

    args = sys.argv[1:] if argv is None else argv
    plan = Plan.from_json(sys.stdin.read()) if args[0] == "-" else read_plan(args[0])
    where = Path(args[1]) if len(args) > 1 else seed_path(plan)
    if where is None:
        raise SystemExit("the plan sets no `cache.seed`: name the seed directory")
    manifest = make_seed(plan, where)
    print(json.dumps(manifest.model_dump(mode="json")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
