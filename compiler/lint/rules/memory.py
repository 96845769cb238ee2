"""Lint rule MS311: the training step must fit in the memory of the GPU it asks for.

The estimate is `runtime/contract/memory.py`'s, the same one `megaspec plan` prints and the receipt sets
beside the measured peak. An out-of-memory error costs the image build, the GPU wait and the
first forward; arithmetic on the spec costs nothing.
"""

from __future__ import annotations

import math

from megaspec.runtime.contract.gpus import GPUS
from megaspec.runtime.contract.memory import GIB, MemoryEstimate, estimate, size_text

from ...spec.model import Spec
from ...spec.model_dims import model_dims, seq_len
from ...spec.topology import geometry, precision
from .registry import RuleContext, rule
from .resources import gpu_entries

_AC_ORDER = ("none", "selective", "full")


def spec_estimate(spec: Spec, *, micro_batch: int | None = None, nproc_per_node: int | None = None,
                  activation_checkpointing: str | None = None) -> MemoryEstimate:
    """The per-GPU estimate for `spec`, or for `spec` with a smaller micro-batch, more checkpointing
    or more GPUs per node (the batch geometry of each from `geometry()`, as `lower` would make it)."""
    t, dims = spec.train, model_dims(spec)
    assert dims is not None, "MS311 judges preset models only"  # noqa: S101 (its caller checks model.entry)
    geo = geometry(spec, micro_batch=micro_batch, nproc_per_node=nproc_per_node)
    return estimate(dims, world_size=geo.world_size, micro_batch=geo.micro_batch, grad_accum=max(1, geo.grad_accum),
                    seq_len=seq_len(spec), precision=precision(spec, geo),
                    activation_checkpointing=activation_checkpointing or t.activation_checkpointing,
                    reshard_after_forward=spec.distributed.reshard_after_forward, device=geo.device,
                    compile=t.compile)


def _proper_divisors(n: int) -> list[int]:
    """Divisors of `n` below `n`, largest first (a smaller micro-batch that keeps the global batch)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)} - {n}, reverse=True)


def _first_fit(spec: Spec, limit: int, options: list[tuple[str, dict]]) -> str | None:
    """The first (words, changes) whose estimate fits, said with that estimate."""
    for words, changes in options:
        est = spec_estimate(spec, **changes)
        if est.total <= limit:
            return f"{words} (est. {size_text(est.total)})"
    return None


def _fixes(spec: Spec, limit: int, per_node_max: int) -> list[str]:
    """Changes that fit, the least disruptive first: more checkpointing, or a smaller micro-batch
    (the same global batch, more accumulation); failing both, both at once; then more GPUs per node."""
    t, geo = spec.train, geometry(spec)
    modes = _AC_ORDER[_AC_ORDER.index(t.activation_checkpointing) + 1:]
    by_checkpointing = _first_fit(spec, limit, [(f"`train.activation_checkpointing: {m}`",
                                                 {"activation_checkpointing": m}) for m in modes])
    by_micro_batch = _first_fit(spec, limit, [(f"`train.micro_batch: {m}`", {"micro_batch": m})
                                              for m in _proper_divisors(t.micro_batch)])
    if found := [fix for fix in (by_checkpointing, by_micro_batch) if fix]:
        return found
    both = _first_fit(spec, limit, [("`activation_checkpointing: full` with `micro_batch: 1`",
                                     {"activation_checkpointing": "full", "micro_batch": 1})])
    if both:
        return [both]
    counts = [c for c in (geo.nproc_per_node * 2**k for k in range(1, 4)) if c <= per_node_max
              and geometry(spec, nproc_per_node=c).divisible]
    more = _first_fit(spec, limit, [(f"`{c}` GPUs per node", {"nproc_per_node": c}) for c in counts])
    return [more] if more else []


@rule("MS311", "memory-over-gpu")
def memory_over_gpu(ctx: RuleContext) -> None:
    """Checks that the estimated peak memory of a training step fits the GPU's memory.

    Why: the run would die with CUDA out-of-memory at the first forward or backward, after the
    image build and the GPU wait, on every rank at once. The estimate (what `megaspec plan`
    prints) counts this rank's shard of params, grads and AdamW moments, the params FSDP2
    gathers, the activations the model saves for backward (eager or compiled), the fp32
    logits and their grads, and an allowance for the CUDA context and fragmentation. Fallback
    GPUs are checked too. The receipt records the estimate beside the measured peak.

    Your own model (`model.entry`) is not judged: its dimensions are in code lint does not run.
    `megaspec plan` counts its parameters on the meta device when torch is installed, and the
    receipt records the measured peak.

    Example:
        resources: {gpu: "H100!:8"}
        preset: dense-8b
        train: {micro_batch: 4, seq_len: 8192}

    Use instead:
        train: {micro_batch: 1, seq_len: 8192, activation_checkpointing: full}
    """
    if ctx.spec.lane == "bench" or ctx.spec.resources.gpu is None or ctx.spec.model.entry is not None:
        return
    est = spec_estimate(ctx.spec)
    for path, req in gpu_entries(ctx):
        capacity = GPUS[req.type].memory_gib
        limit = int(capacity * GIB)
        if est.total <= limit:
            continue
        fixes = _fixes(ctx.spec, limit, GPUS[req.type].max_per_node)
        hint = (f"Use {' or '.join(fixes)}" if fixes
                else "Use a GPU with more memory, or more nodes; no change of checkpointing or micro-batch fits")
        ctx.report(path, f"estimated peak memory `{size_text(est.total)}` per GPU exceeds the `{req.type}`'s "
                         f"`{capacity} GiB` ({est.breakdown()})", hint=hint,
                   related=[ctx.related(("preset",), "model set here")])
