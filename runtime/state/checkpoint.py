"""DCP checkpoints of the sharded model and optimizer, plus the train state, with resume.

Layout (`checkpoint_dirs.py`): `<dir>/step-<N>/`. A checkpoint is written under a temp name and
renamed when complete, and is judged complete by its `.metadata` file, so a run killed mid-save is never
resumed from a half-written checkpoint; one damaged since (its files no longer match their sha256, or
DCP cannot read it) is passed over for the newest intact one, and the receipt says so. The saved train state (step, data position, loss history,
RNG) makes a resumed run reproduce the uninterrupted run's losses exactly.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from ..contract.checkpoint_dirs import complete_steps, damage, lineage_of, step_dir, tmp_dir, write_checksums
from ..contract.errors import CheckpointError, StorageError, describe_storage, storage_error
from ..rank import drills

FULL_BYTES = 1 << 20  # free space below which a filesystem that failed a save is full


def _state(model: nn.Module, optimizer: torch.optim.Optimizer, step: int, eval_every: int | None) -> dict:
    """What a checkpoint holds; `evals` (step, validation loss) only when the run evaluates: one per
    `eval_every` steps up to `step` (a checkpoint is never at the last step)."""
    train = {"step": torch.tensor(step), "data_position": torch.tensor(0),
             "losses": torch.zeros(step, dtype=torch.float64), "rng": torch.get_rng_state()}
    if eval_every:
        train["evals"] = torch.zeros((step // eval_every, 2), dtype=torch.float64)
    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer), "train": train}


def save(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, losses: list[float],
         data_position: int, keep: int, evals: list[dict] | None = None, lineage_key: str | None = None) -> float:
    """Save step `step` on every rank; rank 0 records each file's sha256 and the run's lineage, renames
    the finished dir and prunes old ones."""
    start = time.perf_counter()
    final, tmp = step_dir(root, step), tmp_dir(root, step)
    state = _state(model, optimizer, step, None)
    state["train"].update(data_position=torch.tensor(data_position),
                          losses=torch.tensor(losses, dtype=torch.float64))
    if evals is not None:
        state["train"]["evals"] = torch.tensor([[e["step"], e["loss"]] for e in evals], dtype=torch.float64
                                               ).reshape(-1, 2)
    try:
        drills.disk_full(step, str(tmp))
        dcp.save(state, checkpoint_id=tmp)
        dist.barrier()
        if dist.get_rank() == 0:
            write_checksums(tmp, lineage_key)
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            drills.damage_saved(step, final)
            _prune(root, keep)
        dist.barrier()
    except (Exception, CheckpointException) as exc:  # DCP's CheckpointException is a BaseException
        full = storage_error(exc) is None and _is_full(root)  # torch.save's C++ writer says no errno
        shutil.rmtree(tmp, ignore_errors=True)  # on a full disk, the room the error files and receipt need
        message = f"saving step {step} to `{tmp}` failed: {_first_line(exc)}"
        if full:
            raise StorageError(f"{message} (No space left on device (ENOSPC): `{root}` is full)", stage="checkpoint",
                               step=step) from exc
        raise CheckpointError(message, stage="checkpoint", step=step) from exc
    return time.perf_counter() - start


def _is_full(root: Path) -> bool:
    """Less than FULL_BYTES free where the checkpoints go: a failed save there ran out of space."""
    try:
        fs = os.statvfs(root)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < FULL_BYTES


def _prune(root: Path, keep: int) -> None:
    for step in complete_steps(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(step_dir(root, step), ignore_errors=True)


def load_latest(root: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                eval_every: int | None = None, lineage_key: str | None = None) -> tuple[dict | None, list[str]]:
    """Load the newest intact checkpoint in place: (its train state, or None if there is none; each
    newer checkpoint passed over, with why). Only damaged ones: a `CheckpointError` naming each. One
    saved by another experiment (its lineage is not `lineage_key`) is never loaded: a `CheckpointError`."""
    skipped: list[str] = []
    for step in reversed(complete_steps(root)):
        _refuse_foreign(root, step, lineage_key)
        problem = _agreed(damage(step_dir(root, step)))
        if problem is None:
            try:
                return _load(root, step, model, optimizer, eval_every), skipped
            except (Exception, CheckpointException) as exc:  # every rank's DCP raises together
                problem = f"loading it failed: {_first_line(exc)}"
        skipped.append(f"step-{step}: {problem}")
    if skipped:
        raise CheckpointError("no intact checkpoint to resume from: " + "; ".join(skipped)
                              + ". Remove the damaged ones to start from step 0", stage="checkpoint")
    return None, skipped


def _refuse_foreign(root: Path, step: int, lineage_key: str | None) -> None:
    """A checkpoint of another experiment (rank 0's reading, for every rank) ends the run before any step."""
    theirs = lineage_of(step_dir(root, step))
    if _agreed("foreign" if lineage_key and theirs and theirs != lineage_key else None):
        raise CheckpointError(
            f"`{step_dir(root, step)}` was saved by another experiment: its model, data or optimization settings "
            f"(lineage {theirs[:12] if theirs else '?'}) are not this run's ({lineage_key[:12]}), so resuming would train "
            "its weights under this run's settings. A Modal checkpoint folder is named after the spec: give a "
            "changed experiment a new `name:`, or move that folder away to start fresh", stage="checkpoint")


def _agreed(problem: str | None) -> str | None:
    """Rank 0's verdict on a checkpoint, for every rank: all of them load the same one."""
    verdict = [problem]
    dist.broadcast_object_list(verdict, src=0)
    return verdict[0]


def _load(root: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, eval_every: int | None) -> dict:
    state = _state(model, optimizer, step, eval_every)
    dcp.load(state, checkpoint_id=step_dir(root, step))
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optim"])
    torch.set_rng_state(state["train"]["rng"])
    train = state["train"]
    return {"step": int(train["step"]), "data_position": int(train["data_position"]),
            "losses": [float(x) for x in train["losses"]],
            "evals": [{"step": int(s), "loss": float(v)} for s, v in train.get("evals", torch.zeros(0, 2)).tolist()]}


def _first_line(exc: BaseException) -> str:
    """DCP's errors carry every rank's traceback; the receipt keeps the first line of the cause (and the
    path and errno of a storage failure)."""
    storage = storage_error(exc)
    if storage is not None:
        return describe_storage(storage)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:500]
