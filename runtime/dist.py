"""Process-group lifecycle for one rank: hardened env, init with a long timeout, shorten it after
step 1, and a teardown that never turns a good run into a non-zero exit.

The init timeout covers rendezvous and the first step (where compile happens); after step 1 a
barrier proves every rank got through, and the shorter train timeout applies (torchtitan's
pattern). Teardown order is the measured fix for gloo's exit-time abort (runtime.md §5.4).
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh

from .plan import Plan


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


def init_distributed(plan: Plan) -> Rank:
    """Apply the plan's env, pick the device, start the process group with the init timeout."""
    os.environ.update(plan.distributed.env)
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world_size = int(os.environ["LOCAL_WORLD_SIZE"])
    if plan.distributed.device == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        _set_cpu_threads(local_world_size)
        device = torch.device("cpu")
    dist.init_process_group(backend=plan.distributed.backend, timeout=timedelta(seconds=plan.distributed.init_timeout_s),
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
