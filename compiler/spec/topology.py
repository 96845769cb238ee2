"""Topology and batch geometry of a run: the one function that derives them from a Spec.

How many processes run where (nodes x processes per node, CUDA or CPU, NCCL or gloo) and how a
step's batch splits over them (global = micro x accumulation x world size) are decided by
`geometry()` and nowhere else: `lower` writes it into the Plan, rehearsal keeps it on CPU ranks,
the lint rules (MS201, MS202, MS206-MS210, MS311) and the memory estimate read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from megaspec.runtime.contract.vocabulary import CollectiveBackend, Device, Precision

from .model import Spec


@dataclass(frozen=True, slots=True)
class Geometry:
    nodes: int
    nproc_per_node: int  # GPUs per node on a GPU spec, `resources.ranks` (default 1) on a CPU spec
    device: Device
    backend: CollectiveBackend
    micro_batch: int  # sequences per rank per forward
    global_batch: int  # sequences per optimizer step; default: one micro-batch per rank
    grad_accum: int  # micro-batches per rank per step: global // (micro x world), 0 when global is smaller

    @property
    def world_size(self) -> int:
        return self.nodes * self.nproc_per_node

    @property
    def sequences_per_micro_step(self) -> int:
        """One micro-batch on every rank: the unit `global_batch` must be a multiple of."""
        return self.micro_batch * self.world_size

    @property
    def divisible(self) -> bool:
        """Whether every rank runs the same whole number (at least one) of micro-batches per step."""
        return self.grad_accum >= 1 and self.global_batch == self.sequences_per_micro_step * self.grad_accum

    @property
    def default_precision(self) -> Precision:
        """bf16 on GPUs; fp32 on CPUs, where bf16 is an order of magnitude slower without bf16 units."""
        return "bf16" if self.device == "cuda" else "fp32"


def geometry(spec: Spec, *, micro_batch: int | None = None, nproc_per_node: int | None = None) -> Geometry:
    """World size, processes per node, device, backend and the batch split of `spec`.

    `micro_batch` and `nproc_per_node` ask "what if" (MS311 looks for a change that fits memory); a
    `global_batch` left unset stays one micro-batch per rank under them.
    """
    gpu, t = spec.resources.gpu, spec.train
    on_gpu = gpu is not None
    per_node = nproc_per_node or (gpu.primary.count if on_gpu else spec.resources.ranks or 1)
    micro = micro_batch or t.micro_batch
    unit = micro * per_node * spec.resources.nodes
    global_batch = t.global_batch or unit
    return Geometry(nodes=spec.resources.nodes, nproc_per_node=per_node, device="cuda" if on_gpu else "cpu",
                    backend="nccl" if on_gpu else "gloo", micro_batch=micro, global_batch=global_batch,
                    grad_accum=global_batch // unit)


def precision(spec: Spec, geo: Geometry | None = None) -> Precision:
    """The run's precision: `train.precision`, else the device's default (`Geometry.default_precision`)."""
    return spec.train.precision or (geo or geometry(spec)).default_precision
