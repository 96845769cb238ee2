"""DCP checkpoints of the sharded model and optimizer, plus the train state, with resume.

Layout (`checkpoint_dirs.py`): `<dir>/step-<N>/`. A checkpoint is written under a temp name and
renamed when complete, and is judged complete by its `.metadata` file, so a run killed mid-save is never
resumed from a half-written checkpoint. The saved train state (step, data position, loss history,
RNG) makes a resumed run reproduce the uninterrupted run's losses exactly.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from ..contract.checkpoint_dirs import complete_steps
from ..contract.errors import CheckpointError


def _state(model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> dict:
    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer),
            "train": {"step": torch.tensor(step), "data_position": torch.tensor(0),
                      "losses": torch.zeros(step, dtype=torch.float64), "rng": torch.get_rng_state()}}


def save(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, losses: list[float],
         data_position: int, keep: int) -> float:
    """Save step `step` on every rank; rank 0 renames the finished dir and prunes old ones."""
    start = time.perf_counter()
    final, tmp = root / f"step-{step}", root / f".tmp-step-{step}"
    state = _state(model, optimizer, step)
    state["train"].update(data_position=torch.tensor(data_position),
                          losses=torch.tensor(losses, dtype=torch.float64))
    try:
        dcp.save(state, checkpoint_id=tmp)
        dist.barrier()
        if dist.get_rank() == 0:
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            _prune(root, keep)
        dist.barrier()
    except Exception as exc:
        message = f"saving step {step} to {root} failed: {exc}"
        raise CheckpointError(message, stage="checkpoint", step=step) from exc
    return time.perf_counter() - start


def _prune(root: Path, keep: int) -> None:
    for step in complete_steps(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(root / f"step-{step}", ignore_errors=True)


def load_latest(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict | None:
    """Load the newest complete checkpoint in place; returns its train state, or None if none."""
    steps = complete_steps(root)
    if not steps:
        return None
    step = steps[-1]
    state = _state(model, optimizer, step)
    try:
        dcp.load(state, checkpoint_id=root / f"step-{step}")
    except Exception as exc:
        raise CheckpointError(f"loading {root / f'step-{step}'} failed: {exc}", stage="checkpoint") from exc
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optim"])
    torch.set_rng_state(state["train"]["rng"])
    train = state["train"]
    return {"step": int(train["step"]), "data_position": int(train["data_position"]),
            "losses": [float(x) for x in train["losses"]]}
