"""The process group of one rank: start it, shorten its timeout after step 1, share JSON, tear it down.

The init timeout covers rendezvous and the first step (where compile happens); after step 1 a
barrier proves every rank got through, and the shorter train timeout applies (torchtitan's
pattern). Teardown order is the measured fix for gloo's exit-time abort (`teardown`).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from ..contract.plan import Plan


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
    finalization, where gloo threads abort a good run (`terminate called without an active exception`,
    exit -6: measured in 6 of 20 runs with `destroy` alone, 0 of 20 in this order; pytorch/pytorch#179291).
    A rank forked from the fork server (`launch/fork_server.py`) ends in `os._exit` anyway; a spawned one
    needs this.
    """
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit.register(os._exit, 0)


def gather_json(mine: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's dict on every rank, sent as JSON bytes (status files may live on other nodes).

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
