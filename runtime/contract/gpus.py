"""The facts megaspec keeps about each Modal GPU type, in one table, and the one mapping of a CUDA
device name onto a type.

The compiler checks a request against the table (per-container limit, multi-node support, the
spelling that refuses upgrades, memory for the MS311 estimate) and prices it; the runtime names
the type of the device it observed, prices the attempt and computes MFU from the same row. Pure
Python (no torch), so the compiler imports it; the runtime never imports the compiler.
"""

from __future__ import annotations

from typing import NamedTuple

PRICES_AS_OF = "2026-05-25"  # the date of the snapshot of modal.com/pricing the list prices come from


class GpuType(NamedTuple):
    max_per_node: int  # GPUs per container (Modal's GPU guide, modal.com/docs/guide/gpu)
    memory_gib: float  # per GPU, as the CUDA driver reports `memory.total`, rounded down (approximate)
    bf16_peak_flops: float  # dense BF16 FLOP/s per GPU: NVIDIA's datasheet figure without sparsity (torchtitan's)
    usd_per_hour: float | None  # Modal list price per GPU-hour as of PRICES_AS_OF; None: not listed
    clustered: bool = False  # `modal.clustered` multi-node with RDMA
    exact: str | None = None  # the spelling that refuses Modal's silent upgrades (H100 -> H200)
    served_as: tuple[str, ...] = ()  # the types of card that meet a request without an upgrade; () = itself


# `A100` may be served by either A100 (the 80 GB card is an upgrade), so its memory is the smaller;
# `B200+` is a B200 or a B300 by definition.
GPUS: dict[str, GpuType] = {
    "T4": GpuType(8, 14.7, 65e12, 0.5904),
    "L4": GpuType(8, 22.0, 121e12, 0.7992),
    "A10": GpuType(4, 22.0, 125e12, 1.1016),
    "L40S": GpuType(8, 44.4, 362e12, 1.9512),
    "A100": GpuType(8, 39.4, 312e12, 2.0988, exact="A100-40GB", served_as=("A100-40GB",)),
    "A100-40GB": GpuType(8, 39.4, 312e12, 2.0988),
    "A100-80GB": GpuType(8, 79.1, 312e12, 2.4984),
    "RTX-PRO-6000": GpuType(8, 94.5, 503e12, 3.0312),
    "H100": GpuType(8, 79.1, 989e12, 3.9492, clustered=True, exact="H100!"),
    "H200": GpuType(8, 139.8, 989e12, 4.5396, clustered=True),
    "B200": GpuType(8, 178.4, 2.25e15, 6.2496, clustered=True),
    "B200+": GpuType(8, 178.4, 2.25e15, 6.2496, clustered=True, served_as=("B200", "B300")),
    "B300": GpuType(8, 268.0, 2.25e15, None, clustered=True),
}

# CUDA device-name fragments (all must appear, upper case) -> Modal type, most specific first:
# "H200" before "H100", an A100 with "80GB" before any A100, "A100" before "A10", "L40S" before "L4".
_DEVICE_TYPES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("GB200",), "B200"), (("B300",), "B300"), (("B200",), "B200"), (("H200",), "H200"), (("H100",), "H100"),
    (("A100", "80GB"), "A100-80GB"), (("A100",), "A100-40GB"), (("L40S",), "L40S"), (("A10",), "A10"),
    (("L4",), "L4"), (("T4",), "T4"), (("RTX PRO 6000",), "RTX-PRO-6000"),
)


def device_gpu_type(device_name: str) -> str | None:
    """'NVIDIA H100 80GB HBM3' -> 'H100': the Modal type of a device torch reported; None if unknown."""
    upper = device_name.upper()
    return next((gpu for parts, gpu in _DEVICE_TYPES if all(p in upper for p in parts)), None)


def meets(requested: str, device_name: str) -> bool:
    """Whether a device is what a request of type `requested` asked for, with no upgrade
    (`H100` served by an H200 is not; `A100` served by a 40 GB A100 is)."""
    row = GPUS.get(requested)
    return device_gpu_type(device_name) in ((row.served_as if row else ()) or (requested,))


def peak_flops(device_name: str) -> float | None:
    """The dense BF16 peak of a device torch reported; None for CPUs and devices not in the table."""
    gpu = device_gpu_type(device_name)
    return GPUS[gpu].bf16_peak_flops if gpu else None
