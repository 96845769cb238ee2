"""Lint rule MS311: the training step must fit in the memory of the GPU it asks for.

The estimate is `runtime/memory.py`'s, the same one `megaspec plan` prints and the receipt sets
beside the measured peak. An out-of-memory error costs the image build, the GPU wait and the
first forward; arithmetic on the spec costs nothing.
"""

from __future__ import annotations

import math

from megaspec.runtime.memory import GIB, MemoryEstimate, estimate, size_text

from ...spec.gpu import GPU_MAX_PER_NODE, GPU_MEMORY_GIB
from ...spec.model import Spec, model_dims
from .paths import num_ranks
from .registry import RuleContext, rule
from .resources import gpu_entries

_AC_ORDER = ("none", "selective", "full")
_TRAIN_FIELDS = ("global_batch", "micro_batch", "seq_len", "precision", "activation_checkpointing")


def spec_estimate(spec: Spec, world: int, **train_changes) -> MemoryEstimate:
    """The per-GPU estimate for `spec` on `world` GPUs, with some `train` fields changed."""
    t = {name: getattr(spec.train, name) for name in _TRAIN_FIELDS} | train_changes
    dims = model_dims(spec)
    global_batch = t["global_batch"] or t["micro_batch"] * world
    return estimate(dims, world_size=world, micro_batch=t["micro_batch"],
                    grad_accum=max(1, global_batch // (t["micro_batch"] * world)),
                    seq_len=t["seq_len"] or dims.max_seq_len, precision=t["precision"] or "bf16",
                    activation_checkpointing=t["activation_checkpointing"],
                    reshard_after_forward=spec.distributed.reshard_after_forward, device="cuda",
                    compile=spec.train.compile)


def _proper_divisors(n: int) -> list[int]:
    """Divisors of `n` below `n`, largest first (a smaller micro-batch that keeps the global batch)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)} - {n}, reverse=True)


def _first_fit(spec: Spec, limit: int, options: list[tuple[str, int, dict]]) -> str | None:
    """The first (words, world size, train changes) whose estimate fits, said with that estimate."""
    for words, world, changes in options:
        est = spec_estimate(spec, world, **changes)
        if est.total <= limit:
            return f"{words} (est. {size_text(est.total)})"
    return None


def _fixes(spec: Spec, world: int, limit: int, per_node_max: int) -> list[str]:
    """Changes that fit, the least disruptive first: more checkpointing, or a smaller micro-batch
    (the same global batch, more accumulation); failing both, both at once; then more GPUs per node."""
    t, nodes = spec.train, spec.resources.nodes
    modes = _AC_ORDER[_AC_ORDER.index(t.activation_checkpointing) + 1:]
    by_checkpointing = _first_fit(spec, limit, [(f"`train.activation_checkpointing: {m}`", world,
                                                 {"activation_checkpointing": m}) for m in modes])
    by_micro_batch = _first_fit(spec, limit, [(f"`train.micro_batch: {m}`", world, {"micro_batch": m})
                                              for m in _proper_divisors(t.micro_batch)])
    if found := [fix for fix in (by_checkpointing, by_micro_batch) if fix]:
        return found
    both = _first_fit(spec, limit, [("`activation_checkpointing: full` with `micro_batch: 1`", world,
                                     {"activation_checkpointing": "full", "micro_batch": 1})])
    if both:
        return [both]
    per_node = world // nodes
    counts = [c for c in (per_node * 2**k for k in range(1, 4)) if c <= per_node_max
              and (t.global_batch is None or t.global_batch % (t.micro_batch * c * nodes) == 0)]
    more = _first_fit(spec, limit, [(f"`{c}` GPUs per node", c * nodes, {}) for c in counts])
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

    Example:
        resources: {gpu: "H100!:8"}
        preset: dense-8b
        train: {micro_batch: 4, seq_len: 8192}

    Use instead:
        train: {micro_batch: 1, seq_len: 8192, activation_checkpointing: full}
    """
    if ctx.spec.lane == "bench" or not ctx.spec.resources.gpu:
        return
    world = num_ranks(ctx.spec)
    if not world:
        return
    for path, _, req in gpu_entries(ctx):
        capacity = GPU_MEMORY_GIB.get(req.type) if req else None
        if capacity is None or not 1 <= req.count <= GPU_MAX_PER_NODE[req.type]:
            continue  # MS301 and MS302 report an unknown type or an impossible count
        est, limit = spec_estimate(ctx.spec, world), int(capacity * GIB)
        if est.total <= limit:
            continue
        fixes = _fixes(ctx.spec, world, limit, GPU_MAX_PER_NODE[req.type])
        hint = (f"Use {' or '.join(fixes)}" if fixes
                else "Use a GPU with more memory, or more nodes; no change of checkpointing or micro-batch fits")
        ctx.report(path, f"estimated peak memory `{size_text(est.total)}` per GPU exceeds the `{req.type}`'s "
                         f"`{capacity} GiB` ({est.breakdown()})", hint=hint,
                   related=[ctx.related(("preset",), "model set here")])
