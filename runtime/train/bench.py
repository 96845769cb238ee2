"""The bench lane: collective bus bandwidth and GEMM throughput, with backend identity.

Bus bandwidth follows nccl-tests (its doc/PERFORMANCE.md): all_reduce busbw = algbw * 2(n-1)/n,
all_gather busbw = algbw * (n-1)/n, where algbw = bytes / time. bf16 GEMM on GPU, fp32 on CPU
(bf16 matmul is emulated, and slow, on CPUs without AMX).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist

from ..contract.plan import Plan
from ..rank.process_group import Rank
from ..rank.provenance import observed_devices, torch_versions
from .measure import sync


def bus_factor(op: str, world_size: int) -> float:
    n = world_size
    return 2 * (n - 1) / n if op == "all_reduce" else (n - 1) / n


def _timed(fn: Any, iters: int, warmup_iters: int, device: torch.device) -> float:
    """Mean seconds per call after warmup, the slowest rank's time (collectives finish together)."""
    for _ in range(warmup_iters):
        fn()
    sync(device)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    elapsed = torch.tensor([(time.perf_counter() - start) / iters], dtype=torch.float64, device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    return float(elapsed.item())


def bench_collective(op: str, size_bytes: int, plan: Plan, r: Rank) -> dict[str, Any]:
    dtype = torch.bfloat16 if r.device.type == "cuda" else torch.float32
    numel = max(1, size_bytes // torch.empty((), dtype=dtype).element_size())
    if op == "all_reduce":
        buf = torch.ones(numel, dtype=dtype, device=r.device)
        fn = lambda: dist.all_reduce(buf)  # noqa: E731
    else:
        shard = numel // r.world_size or 1
        numel = shard * r.world_size
        inp = torch.ones(shard, dtype=dtype, device=r.device)
        out = torch.empty(numel, dtype=dtype, device=r.device)
        fn = lambda: dist.all_gather_into_tensor(out, inp)  # noqa: E731
    time_s = _timed(fn, plan.bench.iters, plan.bench.warmup_iters, r.device)
    num_bytes = numel * torch.empty((), dtype=dtype).element_size()
    algbw = num_bytes / time_s / 1e9
    return {"op": op, "size_bytes": num_bytes, "dtype": str(dtype).removeprefix("torch."), "time_s": time_s,
            "algbw_gbps": algbw, "busbw_gbps": algbw * bus_factor(op, r.world_size)}


def bench_gemm(dims: int, plan: Plan, r: Rank) -> dict[str, Any]:
    dtype = torch.bfloat16 if r.device.type == "cuda" else torch.float32
    gen = torch.Generator(device=r.device).manual_seed(0)
    a = torch.randn(dims, dims, dtype=dtype, device=r.device, generator=gen)
    b = torch.randn(dims, dims, dtype=dtype, device=r.device, generator=gen)
    time_s = _timed(lambda: a @ b, plan.bench.iters, plan.bench.warmup_iters, r.device)
    return {"op": "gemm", "dims": dims, "dtype": str(dtype).removeprefix("torch."), "time_s": time_s,
            "tflops": 2 * dims**3 / time_s / 1e12}


def run_bench(plan: Plan, r: Rank) -> dict[str, Any]:
    """Every op in the plan; rank 0's view of the results plus the backend identity."""
    results = []
    for op in plan.bench.ops:
        if op == "gemm":
            results += [bench_gemm(d, plan, r) for d in plan.bench.gemm_dims]
        else:
            results += [bench_collective(op, size, plan, r) for size in plan.bench.sizes_bytes]
    return {"backend": dist.get_backend(), "devices": observed_devices(), "torch": torch.__version__,
            "nccl": torch_versions()["nccl"], "results": results}
