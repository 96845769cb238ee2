"""The validation loss of `train.eval`: the model on the `val/` shards of a prepared `data.path`.

Every evaluation reads the same windows: the first `batches` x `global_batch` windows of `val/`,
placed on the ranks as training places step k's batch (`BatchSlice.first_sample`), so the set does
not depend on the number of ranks (the launcher checked that `val/` holds it). Forward only, under
`no_grad`, in eval mode; every rank takes part (FSDP2 gathers parameters collectively). The loss is
the mean over every window: each rank's sum of micro-batch means, summed over ranks in float64,
divided by the number of micro-batches (every one holds `micro_batch` windows of `seq_len` tokens).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..contract.plan import Plan
from ..state.data import BatchSlice, TokenShards, open_source
from .model import cross_entropy


def open_val(plan: Plan) -> TokenShards | None:
    """The `val/` shards when the plan evaluates; None when it does not."""
    return open_source(plan, split="val") if plan.train.eval is not None else None


def is_eval_step(plan: Plan, step: int) -> bool:
    e = plan.train.eval
    return e is not None and (step % e.every == 0 or step == plan.train.steps)


def val_loss(model: torch.nn.Module, source: TokenShards, geo: BatchSlice, batches: int,
             device: torch.device) -> float:
    """The global mean validation loss over the same `batches` global batches every time."""
    total = torch.zeros((), dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for k in range(batches):
            for micro in range(geo.grad_accum):
                rows = source.rows(geo.first_sample(k, micro), geo.micro_batch).to(device)
                total += cross_entropy(model(rows[:, :-1]), rows[:, 1:]).double()
    model.train(was_training)
    dist.all_reduce(total)
    return total.item() / (batches * geo.grad_accum * geo.world_size)
