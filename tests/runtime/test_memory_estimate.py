"""The memory estimate (runtime/contract/memory.py) against what the runtime's model really allocates.

Activations and logits are measured on CPU with real torch: a dispatch mode counts every storage
that forward and backward create and frees, and keeps the peak of the bytes alive at once. A
bf16 copy of the model stands in for FSDP2's bf16 compute params on GPU. The sharded state and
FSDP2's gathered params are arithmetic of the plan and are checked as such.
"""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from megaspec.runtime.contract import memory
from megaspec.runtime.contract.presets import PRESETS, ModelDims, num_params
from megaspec.runtime.train.model import Decoder, cross_entropy, init_weights
from megaspec.runtime.train.parallel import apply_ac

from .conftest import make_plan

DIMS = [ModelDims(n_layers=4, d_model=256, n_heads=4, n_kv_heads=2, d_ff=768, vocab_size=4096, max_seq_len=512),
        ModelDims(n_layers=3, d_model=128, n_heads=8, n_kv_heads=8, d_ff=512, vocab_size=32000, max_seq_len=512)]


class PeakBytes(TorchDispatchMode):
    """Peak bytes of the storages created under this mode that are alive at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.live = self.peak = 0
        self.alive: set[int] = set()

    def _freed(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self.alive.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {a.untyped_storage().data_ptr() for a in tree_flatten((args, kwargs))[0]
                  if isinstance(a, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key and key not in self.alive and key not in inputs:  # new storage, not a view or in-place
                self.alive.add(key)
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
                weakref.finalize(storage, self._freed, key, storage.nbytes())
        return out


def measured_peak(dims: ModelDims, dtype: torch.dtype, checkpointing: str, batch: int, seq_len: int) -> int:
    torch.manual_seed(0)
    model = Decoder(dims)
    init_weights(model, 0)
    model = model.to(dtype)
    apply_ac(model, checkpointing)
    tokens = torch.randint(0, dims.vocab_size, (batch, seq_len))
    cross_entropy(model(tokens), tokens).backward()  # first use: lazy allocations happen outside the count
    for p in model.parameters():
        p.grad = None
    with PeakBytes() as counter:
        cross_entropy(model(tokens), tokens).backward()
    return counter.peak


@pytest.mark.parametrize(("dims", "checkpointing"), [
    (DIMS[0], "none"), (DIMS[0], "selective"), (DIMS[0], "full"), (DIMS[1], "none"), (DIMS[1], "full"),
], ids=["gqa-none", "gqa-selective", "gqa-full", "big-vocab-none", "big-vocab-full"])
@pytest.mark.parametrize(("dtype", "elem"), [(torch.float32, 4), (torch.bfloat16, 2)], ids=["fp32", "bf16"])
def test_activation_and_logit_peak_matches_the_model(dims, checkpointing, dtype, elem):
    batch, seq_len = 4, 256  # enough tokens that activations, not this single process's full grads, peak
    activations, logits = memory.backward_peak(dims, elem=elem, tokens=batch * seq_len, seq_len=seq_len,
                                               activation_checkpointing=checkpointing)
    measured = measured_peak(dims, dtype, checkpointing, batch, seq_len)
    assert measured == pytest.approx(activations + logits, rel=0.01)


def test_state_is_the_rank_s_shard_of_params_and_moments_plus_accumulated_grads():
    d = PRESETS["dense-1b"]
    common = {"micro_batch": 4, "seq_len": 2048, "precision": "bf16", "activation_checkpointing": "none",
              "reshard_after_forward": "default", "device": "cuda"}
    one_step = memory.estimate(d, world_size=8, grad_accum=1, **common)
    accumulating = memory.estimate(d, world_size=8, grad_accum=4, **common)
    assert one_step.state == 12 * (num_params(d) // 8)
    assert accumulating.state == 16 * (num_params(d) // 8)
    assert memory.estimate(d, world_size=16, grad_accum=1, **common).state == 12 * (num_params(d) // 16)


def test_gathered_params_are_the_head_and_two_blocks_unless_never_resharded():
    d = PRESETS["dense-125m"]
    common = {"world_size": 8, "micro_batch": 1, "grad_accum": 1, "seq_len": 128, "precision": "bf16",
              "activation_checkpointing": "none", "device": "cuda"}
    default = memory.estimate(d, reshard_after_forward="default", **common)
    never = memory.estimate(d, reshard_after_forward="never", **common)
    head = d.vocab_size * d.d_model + d.d_model
    assert default.gathered == 2 * (head + 2 * memory.block_params(d))
    assert never.gathered == 2 * (head + d.n_layers * memory.block_params(d))


def test_checkpointing_and_smaller_micro_batches_lower_the_peak():
    d = PRESETS["dense-8b"]

    def total(**over) -> int:
        args = {"world_size": 8, "micro_batch": 2, "grad_accum": 1, "seq_len": 8192, "precision": "bf16",
                "activation_checkpointing": "none", "reshard_after_forward": "default", "device": "cuda"} | over
        return memory.estimate(d, **args).total

    assert total() > total(activation_checkpointing="selective") > total(activation_checkpointing="full")
    assert total() > total(micro_batch=1)


def test_the_optimizer_step_is_the_peak_when_activations_are_small():
    d = PRESETS["dense-8b"]
    est = memory.estimate(d, world_size=1, micro_batch=1, grad_accum=1, seq_len=64, precision="bf16",
                          activation_checkpointing="full", reshard_after_forward="default", device="cuda")
    assert (est.state, est.activations, est.logits) == (20 * num_params(d), 0, 0)


def test_fp32_on_cuda_counts_the_math_attention_probabilities():
    d, seq_len = PRESETS["dense-125m"], 2048
    flash = memory.block_activation_bytes(d, 4, seq_len, math_attention=False)
    math = memory.block_activation_bytes(d, 4, seq_len, math_attention=True)
    assert math - flash == 2 * 4 * d.n_heads * seq_len


def test_overhead_is_a_gpu_allowance_only():
    cpu = memory.for_plan(make_plan(2))
    gpu = memory.for_plan(make_plan(2, gpu="H100",
                                    train={"precision": "bf16"}))
    assert cpu.overhead == 0 and cpu.total == cpu.allocated
    assert gpu.overhead >= memory.OVERHEAD_FIXED_BYTES and gpu.total > gpu.allocated


def test_the_plan_estimate_uses_the_plan_s_geometry():
    plan = make_plan(2, global_batch=8, micro_batch=2, seq_len=64)
    d = plan.model.dims()
    assert memory.for_plan(plan) == memory.estimate(
        d, world_size=2, micro_batch=2, grad_accum=2, seq_len=64, precision="fp32",
        activation_checkpointing="none", reshard_after_forward="default", device="cpu")


def test_sizes_read_in_the_unit_that_fits():
    assert [memory.size_text(n) for n in (5 * 2**20, 3 * 2**30 // 2, 2**41)] == ["5.0 MiB", "1.5 GiB", "2.0 TiB"]


@pytest.mark.slow
def test_compiled_blocks_save_what_the_estimate_says():
    """One Inductor compile on CPU (the blocks only, as parallel.py does); the head stays eager."""
    from megaspec.runtime.train.parallel import apply_compile

    torch._dynamo.reset()
    dims = ModelDims(n_layers=2, d_model=128, n_heads=4, n_kv_heads=2, d_ff=384, vocab_size=512, max_seq_len=256)
    torch.manual_seed(0)
    model = Decoder(dims)
    init_weights(model, 0)
    model = model.to(torch.bfloat16)
    apply_compile(model)
    owned = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    tokens = torch.randint(0, dims.vocab_size, (2, 128))
    cross_entropy(model(tokens), tokens).backward()  # compile outside the count
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in owned:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        cross_entropy(model(tokens), tokens)
    eager = memory.backward_peak(dims, elem=2, tokens=256, seq_len=128, activation_checkpointing="none")
    compiled = memory.backward_peak(dims, elem=2, tokens=256, seq_len=128, activation_checkpointing="none",
                                    compiled=True)
    saved_logits = 256 * 4 * dims.vocab_size  # the log-softmax output; the rest of `logits` is backward's
    total_weight = 4  # nll_loss's one fp32 scalar, not counted per token
    assert sum(saved.values()) == compiled[0] + saved_logits + total_weight
    assert compiled[0] < 0.75 * eager[0]
