"""Peak memory per rank of the runtime's training step, estimated from the plan's numbers. Pure Python.

Shared by the compiler (lint rule MS311, `megaspec plan`) and the runtime, which records the
estimate beside the measured peak in the receipt so every GPU run checks it.

The terms follow what `train/model.py`, `train/parallel.py` and `train/loop.py` actually allocate:

- state: this rank's shards of fp32 params and AdamW's two fp32 moments (12 bytes per parameter
  over the world size), plus the fp32 grads when gradient accumulation keeps them across
  micro-batches (zero_grad frees them after each step).
- gathered: params FSDP2 all-gathers in the compute dtype. `[norm, output]` stays gathered from its
  forward to its backward; blocks are gathered two at a time (the one computing, the one
  prefetched), or all of them with `reshard_after_forward: never`.
- activations: what autograd saves per token and block, read off the eager model with
  `saved_tensors_hooks` (tests/runtime/test_memory_estimate.py re-measures it): RMSNorm keeps two
  fp32 copies of its input when the compute dtype is bf16; attention keeps q, k, v, its output and
  the log-sum-exp; SwiGLU keeps four `d_ff`-wide tensors. `full` checkpointing keeps a block's
  input only, `selective` does so for every second block (blocks 0, 2, ...); either recomputes one
  block at a time in backward, after the head's backward has freed the logits.
- logits: the fp32 log-softmax output is saved; its backward holds two more fp32 `vocab`-wide
  tensors per token at once, while every saved activation is still alive. That moment (the start
  of backward) is the peak, unless AdamW's step is larger: it adds one fp32 temporary per shard.
- overhead (GPU only): CUDA context, NCCL and cuBLAS workspaces and allocator fragmentation. An
  allowance, not a measurement: `torch.cuda.max_memory_allocated` (the receipt's peak) excludes it.

With `train.compile`, the blocks save what Inductor's partitioner keeps instead: the RMSNorm
copies fuse away and cheap elementwise outputs are recomputed (about 60% of the eager bytes in
bf16). That term was read off Inductor on CPU; the partitioner that picks it is the same on CUDA. fp32 attention on CUDA runs the math kernel, which
keeps the attention probabilities: an `n_heads x seq_len` term per token that bf16 does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .presets import ModelDims, num_params

if TYPE_CHECKING:
    from .plan import Plan

GIB = 2**30
OVERHEAD_FIXED_BYTES = GIB  # CUDA context, NCCL communicators, cuBLAS workspaces
OVERHEAD_FRACTION = 0.08  # caching-allocator fragmentation (reserved beyond allocated)


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """Bytes per rank at the peak of a training step."""

    state: int
    gathered: int
    activations: int
    logits: int
    overhead: int

    @property
    def allocated(self) -> int:
        """What `torch.cuda.max_memory_allocated` should report."""
        return self.state + self.gathered + self.activations + self.logits

    @property
    def total(self) -> int:
        """What the GPU must hold: the allocated peak plus the overhead allowance."""
        return self.allocated + self.overhead

    def breakdown(self) -> str:
        parts = {"state": self.state, "gathered params": self.gathered, "activations": self.activations,
                 "logits": self.logits, "overhead": self.overhead}
        return ", ".join(f"{name} {size_text(value)}" for name, value in parts.items() if value)


def size_text(value: int) -> str:
    """`61.2 GiB`; `12.3 MiB` below one GiB and `2.5 TiB` from one TiB up."""
    if value >= 2**40:
        return f"{value / 2**40:,.1f} TiB"
    return f"{value / GIB:.1f} GiB" if value >= GIB else f"{value / 2**20:.1f} MiB"


def block_params(d: ModelDims) -> int:
    kv_dim = d.n_kv_heads * d.head_dim
    return 2 * d.d_model * d.d_model + 2 * d.d_model * kv_dim + 3 * d.d_model * d.d_ff + 2 * d.d_model


def block_activation_bytes(d: ModelDims, elem: int, seq_len: int, math_attention: bool,
                           compiled: bool = False) -> int:
    """Bytes autograd saves per token for one block without checkpointing."""
    h, kv_dim, ff = d.d_model, d.n_kv_heads * d.head_dim, d.d_ff
    math = 2 * elem * d.n_heads * seq_len if math_attention else 0  # scores and probabilities
    if compiled:  # Inductor's partition: seven `d_model`-wide tensors, k and v, three `d_ff`-wide, 1/rms
        return elem * (7 * h + 2 * kv_dim + 3 * ff) + 4 * d.n_heads + 8 + math
    fp32_copies = 2 if elem < 4 else 1  # `x.float()` twice; a no-op on fp32 input
    norm = 4 * fp32_copies * h + elem * h + 4  # the fp32 copies, the normed input, 1/rms
    attention = elem * (h + 2 * kv_dim) + elem * h + 4 * d.n_heads + math  # q, k, v, output, log-sum-exp
    linear_inputs = 2 * elem * h + elem * h  # attention and MLP inputs (after the norms), wo's input
    return 2 * norm + attention + linear_inputs + 4 * elem * ff


def backward_peak(d: ModelDims, *, elem: int, tokens: int, seq_len: int, activation_checkpointing: str,
                  math_attention: bool = False, compiled: bool = False) -> tuple[int, int]:
    """(activations, logits) bytes at the peak of forward + backward, model params and grads aside.

    `compiled`: the blocks run through `torch.compile` (parallel.py compiles blocks, not the head).
    """
    full = block_activation_bytes(d, elem, seq_len, math_attention, compiled)
    checkpointed = {"none": 0, "full": d.n_layers}.get(activation_checkpointing, (d.n_layers + 1) // 2)
    blocks = tokens * (checkpointed * elem * d.d_model + (d.n_layers - checkpointed) * full)
    final = (4 * (2 if elem < 4 else 1) + elem) * d.d_model + 4 + elem * d.d_model + 8  # norm, head input, targets
    # The start of backward: everything saved, plus the log-softmax output and two fp32 grads.
    at_start = (blocks + tokens * final, tokens * 3 * 4 * d.vocab_size)
    # Later, with checkpointing: the head's backward has freed the logits and one block is re-run.
    recompute = blocks + tokens * full if checkpointed else 0
    return (recompute, 0) if recompute > sum(at_start) else at_start


def estimate(d: ModelDims, *, world_size: int, micro_batch: int, grad_accum: int, seq_len: int, precision: str,
             activation_checkpointing: str, reshard_after_forward: str, device: str,
             compile: bool = False) -> MemoryEstimate:
    """Peak bytes per rank of one training step (see the module docstring for each term)."""
    elem = 2 if precision == "bf16" and device == "cuda" else 4  # bf16 on CPU is not cast (parallel.py)
    shard = num_params(d) // world_size
    # At the start of backward: params and moments; grads too when a previous micro-batch left them.
    state = (12 + (4 if grad_accum > 1 else 0)) * shard
    head = d.vocab_size * d.d_model + d.d_model  # [norm, output]: one FSDP unit
    blocks_gathered = d.n_layers if reshard_after_forward == "never" else min(2, d.n_layers)
    gathered = elem * (head + blocks_gathered * block_params(d))
    activations, logits = backward_peak(d, elem=elem, tokens=micro_batch * seq_len, seq_len=seq_len,
                                        activation_checkpointing=activation_checkpointing,
                                        math_attention=device == "cuda" and elem == 4, compiled=compile)
    step_peak = 20 * shard  # params, grads, moments and AdamW's foreach temporary; activations are freed
    if step_peak > state + gathered + activations + logits:
        state, gathered, activations, logits = step_peak, 0, 0, 0
    allocated = state + gathered + activations + logits
    overhead = OVERHEAD_FIXED_BYTES + int(OVERHEAD_FRACTION * allocated) if device == "cuda" else 0
    return MemoryEstimate(state=state, gathered=gathered, activations=activations, logits=logits,
                          overhead=overhead)


def for_plan(plan: Plan) -> MemoryEstimate | None:
    """The estimate for one rank of `plan` (its model, batch geometry and distributed settings); None for the
    user's own model (`model.entry`), whose dimensions only its code knows."""
    if plan.model.user is not None:
        return None
    t, d = plan.train, plan.distributed
    return estimate(plan.model.dims(), world_size=d.world_size, micro_batch=t.micro_batch, grad_accum=t.grad_accum,
                    seq_len=t.seq_len, precision=t.precision, activation_checkpointing=t.activation_checkpointing,
                    reshard_after_forward=t.reshard_after_forward, device=d.device, compile=t.compile)
