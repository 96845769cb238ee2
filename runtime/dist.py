"""The life of one rank: hardened env, process group, the lane, rank 0's receipt, clean teardown.

`rank_main` is what the elastic launcher runs in every worker process (`@record`: a failing rank
writes its own error.json, and its typed error goes to its status file first).

The init timeout covers rendezvous and the first step (where compile happens); after step 1 a
barrier proves every rank got through, and the shorter train timeout applies (torchtitan's
pattern). Teardown order is the measured fix for gloo's exit-time abort (runtime.md §5.4).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.elastic.multiprocessing.errors import record

from . import cachestate
from .errors import STAGES, code_for
from .plan import Plan
from .provenance import observed_devices
from .receipt import RunError, write_receipt
from .status import RankStatus


@dataclass(frozen=True)
class Rank:
    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    device: torch.device
    mesh: DeviceMesh

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _set_cpu_threads(local_world_size: int) -> None:
    """Split the cores between local ranks: oversubscription makes every rank slower."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // local_world_size))


def init_distributed(plan: Plan, run_dir: Path) -> Rank:
    """Apply the plan's env, pick the device, start the process group with the init timeout."""
    os.environ.update(plan.distributed.env)
    os.environ.update({key: str(run_dir / rel) for key, rel in plan.distributed.run_dir_env.items()})
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world_size = int(os.environ["LOCAL_WORLD_SIZE"])
    if plan.distributed.device == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        _set_cpu_threads(local_world_size)
        device = torch.device("cpu")
    init_timeout = timedelta(seconds=plan.distributed.init_timeout_s)
    dist.init_process_group(backend=plan.distributed.backend, timeout=init_timeout,
                            device_id=device if device.type == "cuda" else None)
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    return Rank(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(),
                local_world_size=local_world_size, device=device, mesh=mesh)


def shorten_timeout(plan: Plan) -> None:
    """After step 1: barrier, then apply the train timeout (private API, guarded)."""
    dist.barrier()
    setter = getattr(dist.distributed_c10d, "_set_pg_timeout", None)
    if setter is not None:
        setter(timedelta(seconds=plan.distributed.timeout_s), None)


def teardown() -> None:
    """Barrier, destroy, flush, then `os._exit(0)` at interpreter exit.

    Call only after the receipt and status are on disk. The hard exit is deferred to `atexit`
    because the elastic wrapper must still hand back this rank's return value; it runs before
    finalization, where gloo threads abort a good run (runtime.md §5.4).
    """
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit.register(os._exit, 0)


@record
def rank_main(plan_json: str, run_dir_str: str, seeded: bool, started_at: str) -> int:
    """One rank: init, run the lane, rank 0 writes the receipt, then a clean teardown."""
    plan, run_dir = Plan.model_validate_json(plan_json), Path(run_dir_str)
    status = RankStatus(run_dir, int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]))
    status.enter("bootstrap")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cachestate.cache_dir_for(plan, run_dir))
    outcome: dict[str, Any] = {}
    try:
        r = init_distributed(plan, run_dir)
        status.update(device=_device_name(r.device), observed_devices=observed_devices() if r.is_main else None)
        _run_lane(plan, r, status, run_dir, seeded, outcome)
        status.enter("receipt")
        per_rank = _gather(status.data)
        if r.is_main:
            from .launch import build_receipt

            write_receipt(run_dir / "receipt.json",
                          build_receipt(plan, run_dir, started_at, outcome, per_rank, status="ok"))
        status.enter("teardown")
        teardown()
        status.enter("done")
    except BaseException as exc:
        _record_failure(plan, run_dir, status, exc, started_at, outcome)
        raise
    return 0


def _run_lane(plan: Plan, r: Rank, status: RankStatus, run_dir: Path, seeded: bool,
              outcome: dict[str, Any]) -> None:
    if plan.lane == "bench":
        from .bench import run_bench

        status.enter("train")
        outcome["bench"] = run_bench(plan, r)
        return
    from .train import run_training

    run_training(plan, r, status, run_dir, seeded, outcome)


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _gather(mine: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's status on every rank, as JSON bytes (the files may live on other nodes).

    Not `all_gather_object`: it needs numpy, which the runtime does not require.
    """
    payload = torch.tensor(list(json.dumps(mine).encode()), dtype=torch.uint8)
    nccl = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else torch.device("cpu")
    size = torch.tensor([payload.numel()], device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8, device=device)
    padded[: payload.numel()] = payload.to(device)
    chunks = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(chunks, padded)
    return [json.loads(bytes(c[: int(n.item())].tolist()).decode()) for c, n in zip(chunks, sizes, strict=True)]


def _record_failure(plan: Plan, run_dir: Path, status: RankStatus, exc: BaseException, started_at: str,
                    outcome: dict[str, Any]) -> None:
    """Write this rank's typed error to its status file; rank 0 also writes an error receipt."""
    phase = status.data.get("phase", "bootstrap")
    stage = getattr(exc, "stage", None) or (phase if phase in STAGES else "teardown")
    step = getattr(exc, "step", None) or status.data.get("last_step", 0) + 1
    error = {"code": code_for(exc), "stage": stage, "step": step, "failed_ns": time.time_ns(),
             "message": f"{type(exc).__name__}: {exc}"[:2000]}
    status.update(error=error, traceback=traceback.format_exc()[-4000:])
    if status.data["rank"] != 0:
        return
    try:
        from .launch import build_receipt

        failure = RunError(code=error["code"], stage=stage, rank=0, step=step, message=error["message"])
        write_receipt(run_dir / "receipt.json", build_receipt(plan, run_dir, started_at, outcome,
                                                              [status.data], status="error", error=failure))
    except Exception as receipt_exc:  # the launcher completes the receipt anyway
        print(f"rank 0 could not write the receipt: {receipt_exc}", file=sys.stderr)
