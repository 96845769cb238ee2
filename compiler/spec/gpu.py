"""Modal GPU strings and run topology: shared facts for the rules and for `lower`.

The Modal client does not validate GPU names or counts (the server does, after you pay for the
image build), so megaspec does: the 1.6 list and per-container limits (dated list prices: runtime/cost.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# The dated list prices live with the cost estimate, which the receipt uses too.
from megaspec.runtime.cost import (  # noqa: F401 - re-exported for lower
    CPU_USD_PER_CORE_HOUR,
    GPU_USD_PER_HOUR,
    MEM_USD_PER_GIB_HOUR,
)

# Modal 1.6 GPU types -> max GPUs per container (reference/modal-api.md §1.2).
GPU_MAX_PER_NODE: dict[str, int] = {
    "T4": 8, "L4": 8, "A10": 4, "L40S": 8, "A100": 8, "A100-40GB": 8, "A100-80GB": 8,
    "RTX-PRO-6000": 8, "H100": 8, "H200": 8, "B200": 8, "B200+": 8, "B300": 8,
}
CLUSTER_GPU_TYPES = {"H100", "H200", "B200", "B200+", "B300"}  # modal.clustered + RDMA

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
