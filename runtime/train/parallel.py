"""FSDP2 wiring (torchtitan's apply_fsdp order): activation checkpointing, per-block compile, then
`fully_shard` per block and the root.

Order matters: AC wraps a block, compile wraps the AC-wrapped block, FSDP shards last, so each
block is one FSDP unit (one all-gather, one reduce-scatter) and one reused compiled graph.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from ..contract.plan import Plan
from .model import Decoder
from .user_model import blocks


def mixed_precision(plan: Plan) -> MixedPrecisionPolicy:
    """bf16 params, fp32 gradient reduction on GPU bf16; fp32 otherwise (bf16 is 12x slower on AVX2)."""
    if plan.train.precision == "bf16" and plan.distributed.device == "cuda":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()  # no casting at all


def _reshard(policy: str) -> bool:
    """'default' and 'always' reshard (ZeRO-3); 'never' keeps params gathered (ZeRO-2)."""
    return policy != "never"


def apply_ac(model: nn.Module, mode: str) -> None:
    """`full`: every block; `selective`: every 2nd block (torchtitan's layer-level option "2")."""
    if mode == "none":
        return
    for i, (key, block) in enumerate(blocks(model)):
        if mode == "full" or i % 2 == 0:
            model.layers[key] = checkpoint_wrapper(block, preserve_rng_state=False)


def apply_compile(model: nn.Module, backend: str = "inductor") -> None:
    """Compile each block in place: the blocks are identical, so one graph is reused."""
    for _, block in blocks(model):
        block.compile(fullgraph=True, backend=backend)


def apply_fsdp(model: Decoder, mesh: DeviceMesh, mp: MixedPrecisionPolicy, policy: str) -> int:
    """Shard embeddings, each block, [norm, output], then the root. Returns the number of units."""
    reshard = _reshard(policy)
    config = {"mesh": mesh, "mp_policy": mp}
    fully_shard(model.tok_embeddings, **config, reshard_after_forward=reshard)
    for block in model.layers.values():
        fully_shard(block, **config, reshard_after_forward=reshard)
    # The last layers run first in backward: resharding them would only re-gather them at once.
    fully_shard([model.norm, model.output], **config, reshard_after_forward=policy == "always")
    fully_shard(model, **config)
    return len(model.layers) + 3


def apply_fsdp_user(model: nn.Module, mesh: DeviceMesh, mp: MixedPrecisionPolicy, policy: str) -> int:
    """The user's model: each of `layers`, then the root (which keeps everything else, tied weights included)."""
    for _, block in blocks(model):
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=_reshard(policy))
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return len(model.layers) + 1


def parallelize(model: nn.Module, plan: Plan, mesh: DeviceMesh) -> tuple[nn.Module, int]:
    """AC, compile, then FSDP2: megaspec's decoder, or the user's model (`plan.model.user`) by its `layers`."""
    apply_ac(model, plan.train.activation_checkpointing)
    if plan.train.compile:
        apply_compile(model, plan.train.compile_backend)
    shard = apply_fsdp if plan.model.user is None else apply_fsdp_user
    num_units = shard(model, mesh, mixed_precision(plan), plan.train.reshard_after_forward)
    return model, num_units
