"""Modal GPU strings and run topology: shared facts for the rules and for `lower`.

The Modal client does not validate GPU names or counts (the server does, after you pay for the
image build), so megaspec does: the 1.6 list, per-container limits, and dated list prices.
"""

from __future__ import annotations

from dataclasses import dataclass

# Modal 1.6 GPU types -> max GPUs per container (reference/modal-api.md §1.2).
GPU_MAX_PER_NODE: dict[str, int] = {
    "T4": 8, "L4": 8, "A10": 4, "L40S": 8, "A100": 8, "A100-40GB": 8, "A100-80GB": 8,
    "RTX-PRO-6000": 8, "H100": 8, "H200": 8, "B200": 8, "B200+": 8, "B300": 8,
}
CLUSTER_GPU_TYPES = {"H100", "H200", "B200", "B200+", "B300"}  # modal.clustered + RDMA

# Price table, USD per GPU-hour, Modal list prices transcribed 2026-05-25 (reference/modal-api.md §8).
PRICES_AS_OF = "2026-05-25"
GPU_USD_PER_HOUR: dict[str, float] = {
    "B200": 6.2496, "B200+": 6.2496, "H200": 4.5396, "H100": 3.9492, "RTX-PRO-6000": 3.0312,
    "A100-80GB": 2.4984, "A100": 2.0988, "A100-40GB": 2.0988, "L40S": 1.9512, "A10": 1.1016,
    "L4": 0.7992, "T4": 0.5904,
}
CPU_USD_PER_CORE_HOUR = 0.04716
MEM_USD_PER_GIB_HOUR = 0.007992

# Dense BF16 peak FLOP/s per GPU (reference/runtime.md §2.2), for cost estimates before a run.
BF16_PEAK_FLOPS: dict[str, float] = {
    "H100": 989e12, "H200": 989e12, "B200": 2.25e15, "B200+": 2.25e15, "B300": 2.25e15,
    "A100": 312e12, "A100-40GB": 312e12, "A100-80GB": 312e12, "L40S": 362e12, "RTX-PRO-6000": 503e12,
    "A10": 125e12, "L4": 121e12, "T4": 65e12,
}


# Memory per GPU in GiB as the CUDA driver reports it (`memory.total`), rounded down; for the
# memory-fit estimate (MS311). Approximate: transcribed from vendor capacities, not read on Modal.
# `A100` may be served by either A100, so it gets the smaller; `B200+` may be a B200.
GPU_MEMORY_GIB: dict[str, float] = {
    "T4": 14.7, "L4": 22.0, "A10": 22.0, "L40S": 44.4, "A100": 39.4, "A100-40GB": 39.4, "A100-80GB": 79.1,
    "RTX-PRO-6000": 94.5, "H100": 79.1, "H200": 139.8, "B200": 178.4, "B200+": 178.4, "B300": 268.0,
}


@dataclass(frozen=True, slots=True)
class GpuRequest:
    type: str  # canonical upper-case Modal type without "!" ("H100")
    count: int
    exact: bool  # written as "H100!" in the spec

    def modal_string(self, exact: bool = False) -> str:
        bang = "!" if (self.exact or exact) and self.type == "H100" else ""
        return f"{self.type}{bang}:{self.count}"


def parse_gpu(value: str) -> GpuRequest | None:
    """`H200:8` -> GpuRequest("H200", 8). None when the text is not TYPE[:COUNT] with an integer count."""
    text = value.strip()
    type_, _, count_text = text.partition(":")
    if not type_:
        return None
    count = 1
    if count_text:
        if not count_text.isdigit():
            return None
        count = int(count_text)
    upper = type_.upper()
    exact = upper.endswith("!")
    return GpuRequest(type=upper.rstrip("!"), count=count, exact=exact)


def gpu_list(gpu: str | list[str] | None) -> list[str]:
    if gpu is None:
        return []
    return [gpu] if isinstance(gpu, str) else list(gpu)


def primary_gpu(gpu: str | list[str] | None) -> GpuRequest | None:
    items = gpu_list(gpu)
    return parse_gpu(items[0]) if items else None


def world_size(gpu: str | list[str] | None, nodes: int, ranks: int | None) -> int:
    """Processes in the run: GPUs per node x nodes, or CPU ranks for a CPU-only spec."""
    req = primary_gpu(gpu)
    if req is not None:
        return max(req.count, 0) * nodes
    return (ranks or 1) * nodes
