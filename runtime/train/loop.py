"""The training loop of one rank: model -> FSDP2 -> data -> (resume) -> steps -> outcome.

Reads top to bottom like nanochat's base_train: build, shard, agree on the data, then one
optimizer step per iteration with gradient accumulation, clipping, warmup + cosine LR, one log
line every `train.log_every` steps on rank 0, and DCP checkpoints. Structured numbers go into the
returned outcome, which rank 0 turns into the receipt.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from ..contract import checkpoint_dirs
from ..contract.errors import CheckpointError, NonFiniteLossError
from ..contract.plan import Plan
from ..contract.progress import ProgressLog
from ..contract.receipt import CheckpointReport, DivergenceReport
from ..rank import drills
from ..rank.outcome import LaneOutcome
from ..rank.process_group import Rank, shorten_timeout
from ..rank.provenance import device_name
from ..rank.status import RankStatus
from ..state import cachestate, checkpoint
from ..state.data import BatchSlice, agree_on_steps, get_batch, open_source
from . import tracking, user_model
from .evaluate import is_eval_step, open_val, val_loss
from .measure import StepClock, peak_mem_gib, summarize
from .model import build_model, cross_entropy
from .parallel import parallelize
from .user_model import UserModel

GC_EVERY_STEPS = 50  # all ranks collect on the same steps


def lr_at(plan: Plan, step: int) -> float:
    """Linear warmup to `lr`, then cosine down to `lr * min_lr_ratio` at the last step (1-based)."""
    t = plan.train
    if step <= t.lr_warmup_steps:
        return t.lr * step / max(1, t.lr_warmup_steps)
    progress = (step - t.lr_warmup_steps) / max(1, t.steps - t.lr_warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return t.lr * (t.min_lr_ratio + (1 - t.min_lr_ratio) * cosine)


def global_losses(pending: list[torch.Tensor], world_size: int) -> list[float]:
    """Mean over ranks of each step's local loss, in one collective (gloo has no AVG)."""
    if not pending:
        return []
    stacked = torch.stack(pending).double()
    dist.all_reduce(stacked)
    return (stacked / world_size).tolist()


def _prepare_cache(plan: Plan, status: RankStatus, run_dir: Path, seeded: bool) -> dict[str, Any]:
    """Rank side of the cache: load a mega-cache seed, then count what is on disk before compiling."""
    if not plan.train.compile:
        return {}
    seeded = cachestate.load_seed_artifacts(plan) or seeded
    pre = cachestate.count_cache_files(cachestate.cache_dir_for(plan, run_dir))
    report = {"state": cachestate.judge_state(pre, seeded), "pre_files": pre}
    status.update(cache=report)
    return report


def run_training(plan: Plan, r: Rank, status: RankStatus, run_dir: Path, seeded: bool,
                 outcome: LaneOutcome, user: UserModel | None = None) -> None:
    """Train on this rank, filling `outcome` (losses, metrics, data, checkpoint, steps) as it goes,
    so a failed run's receipt still shows how far it got. Rank 0's trackers (TensorBoard, W&B, when
    asked) start first, so their start-up is in no rank's first-step time, and end with the loop.
    `user`: the user's model as `user_model.prepare` built it before the process group."""
    with tracking.mirrored(plan, run_dir, r.is_main) as mirrors:
        _train(plan, r, status, run_dir, seeded, outcome, mirrors, user)
        tracking.summarize(mirrors, plan, outcome)


def _train(plan: Plan, r: Rank, status: RankStatus, run_dir: Path, seeded: bool, outcome: LaneOutcome,
           mirrors: list, user: UserModel | None) -> None:
    t = plan.train
    model, optimizer, source, geo, cache = _setup(plan, r, status, run_dir, seeded, outcome, user)
    val = open_val(plan)
    ckpt_root = checkpoint_dirs.root_for(plan, run_dir)
    start_step, losses, outcome.evals, ckpt = _resume(plan, ckpt_root, model, optimizer, status)
    outcome.resumed_from, outcome.checkpoint, outcome.losses = start_step or None, ckpt, losses
    tokens_per_step = t.tokens_per_step
    clock = StepClock(num_excluded=start_step + 1 + t.warmup_steps, tokens_per_step=tokens_per_step)
    progress = ProgressLog(run_dir, t.steps, r.is_main, mirrors=mirrors)
    if start_step:
        progress.resumed(start_step, losses, outcome.evals)
    pending: list[torch.Tensor] = []
    status.enter("first-step" if start_step == 0 else "train")
    gc.disable()  # torchtitan's pattern: a GC pause on one rank stalls every rank at the next collective
    clock.start()
    for step in range(start_step + 1, t.steps + 1):
        if status.state.phase == "train":  # step 1 of a fresh run is the first-step stage
            drills.fire(r.rank, "train", step)
        if step % GC_EVERY_STEPS == 0:
            gc.collect(1)
        first = step == start_step + 1
        step_loss, grad_norm = _train_step(plan, model, optimizer, source, geo, step, r.device,
                                           status if first else None)
        pending.append(step_loss)
        step_s = clock.tick(step)
        if first:
            _after_first_step(plan, status, cache, step_s)
        status.update(last_step=step)
        is_last, saves = step == t.steps, _is_checkpoint_step(plan, step)
        if step % t.log_every == 0 or is_last or saves:
            logged = global_losses(pending, r.world_size)
            losses += logged
            pending = []
            progress.emit(step, logged, lr_at(plan, step), grad_norm.item(), step_s, tokens_per_step)
            outcome.diverged = outcome.diverged or diverged(plan, losses, len(losses) - len(logged))
        if is_eval_step(plan, step):
            outcome.evals.append({"step": step, "loss": val_loss(model, val, geo, t.eval.batches, r.device)})
            progress.evaluated(step, outcome.evals[-1]["loss"])
            clock.start()  # an evaluation is not step time
        if outcome.diverged and outcome.diverged.action == "stop":
            break  # every rank sees the same global losses, so every rank stops here
        if saves and not is_last:
            status.enter("checkpoint")
            drills.fire(r.rank, "checkpoint", step)
            ckpt.save_s = checkpoint.save(ckpt_root, model, optimizer, step, losses, step * t.global_batch,
                                          plan.checkpoint.keep, outcome.evals if t.eval else None,
                                          checkpoint_dirs.lineage(plan))
            ckpt.saved_steps.append(step)
            status.enter("train")
            clock.start()  # the save is reported as save_s, not as step time
    gc.enable()
    _finish(plan, r, status, clock, outcome, start_step)


def diverged(plan: Plan, losses: list[float], first_new: int) -> DivergenceReport | None:
    """`train.divergence` judged on the losses logged since index `first_new`: the report of the step
    that completes `patience` losses in a row above `factor` x the first loss, else None."""
    rule = plan.train.divergence
    if rule is None or not losses:
        return None
    line, run = rule.factor * losses[0], 0
    for i in range(max(0, first_new - rule.patience + 1), len(losses)):
        run = run + 1 if losses[i] > line else 0
        if run >= rule.patience and i >= first_new:
            return DivergenceReport(step=i + 1, loss=losses[i], first_loss=losses[0], factor=rule.factor,
                                    patience=rule.patience, action=rule.action)
    return None


def _setup(plan: Plan, r: Rank, status: RankStatus, run_dir: Path, seeded: bool, outcome: LaneOutcome,
           user: UserModel | None) -> tuple:
    """Init (weights from the seed, data agreement), then AC + compile + FSDP2 and the optimizer. The
    user's model is sharded on the meta device first and materialized and initialized after."""
    t = plan.train
    status.enter("init")
    model = build_model(plan.model.dims(), t.seed, r.device) if user is None else user.model
    geo = BatchSlice.of(plan, r.rank)
    source = open_source(plan)
    outcome.data = agree_on_steps(source, geo, t.steps, r.device)
    status.enter("compile")  # wrapping happens here; compilation itself in the first forward
    cache = _prepare_cache(plan, status, run_dir, seeded)
    model, outcome.num_fsdp_units = parallelize(model, plan, r.mesh)
    if user is not None:
        user_model.materialize(user, plan, r.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(0.9, 0.95), weight_decay=t.weight_decay,
                                  foreach=True)
    return model, optimizer, source, geo, cache


def _resume(plan: Plan, root: Path | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            status: RankStatus) -> tuple[int, list[float], list[dict], CheckpointReport]:
    """(start step, losses so far, evaluations so far, checkpoint report): the newest intact checkpoint,
    if any; the report names each newer one passed over as damaged."""
    ckpt = CheckpointReport(dir=str(root) if root else None)
    if root is None or plan.checkpoint.resume != "auto":
        return 0, [], [], ckpt
    status.enter("checkpoint")
    load_start = time.perf_counter()
    eval_every = plan.train.eval.every if plan.train.eval else None
    resumed, ckpt.skipped = checkpoint.load_latest(root, model, optimizer, eval_every,
                                                   checkpoint_dirs.lineage(plan))
    if resumed is None:
        return 0, [], [], ckpt
    if resumed["data_position"] != resumed["step"] * plan.train.global_batch:
        raise CheckpointError(f"step-{resumed['step']} was written with another `train.global_batch`; resuming"
                              " would change the data order. Keep the batch or start fresh", stage="checkpoint")
    ckpt.resumed_from, ckpt.load_s = resumed["step"], time.perf_counter() - load_start
    return resumed["step"], resumed["losses"], resumed["evals"], ckpt


def _train_step(plan: Plan, model: torch.nn.Module, optimizer: torch.optim.Optimizer, source: Any, geo: BatchSlice,
                step: int, device: torch.device, first_status: RankStatus | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step (grad accumulation, clipping); returns this rank's loss for the step and the
    global gradient norm before clipping."""
    t = plan.train
    for group in optimizer.param_groups:
        group["lr"] = lr_at(plan, step)
    step_loss = torch.zeros((), device=device)
    for micro in range(t.grad_accum):
        inputs, targets = get_batch(source, geo, step - 1, micro, device)
        forward_start = time.perf_counter()
        check = first_status is not None and micro == 0 and plan.model.user is not None
        logits = user_model.first_forward(model, inputs, plan) if check else model(inputs)
        loss = cross_entropy(logits, targets) / t.grad_accum
        if first_status is not None and micro == 0:
            first_status.update(first_forward_s=time.perf_counter() - forward_start)
        loss.backward()
        step_loss += loss.detach()
    grad_norm = grad_norm_of(model, t.grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    local = step_loss.item()  # also the sync point that makes the step time honest
    if not math.isfinite(local):
        raise NonFiniteLossError(step, local)
    return step_loss, grad_norm


def grad_norm_of(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """The global norm of the gradients before clipping, on every rank (a collective: every rank calls
    it); the gradients are clipped to `max_norm` when it is above 0."""
    if max_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def _finish(plan: Plan, r: Rank, status: RankStatus, clock: StepClock, outcome: LaneOutcome, start_step: int) -> None:
    measured = clock.measured()
    outcome.completed, outcome.measured = len(outcome.losses), len(measured)
    outcome.excluded = min(plan.train.steps, clock.num_excluded) - start_step
    flops = plan.model.flops_per_token if outcome.model is None else outcome.model.flops_per_token
    outcome.metrics = summarize(clock, r.world_size, flops, device_name(r.device), r.device.type)
    status.update(peak_mem_gib=peak_mem_gib(r.device), compiled=plan.train.compile,
                  steady_step_s=statistics.median(measured) if measured else None)


def _is_checkpoint_step(plan: Plan, step: int) -> bool:
    every = plan.checkpoint.every
    return plan.checkpoint.dir is not None and bool(every) and step % every == 0


def _after_first_step(plan: Plan, status: RankStatus, cache: dict[str, Any], step_s: float) -> None:
    """Every rank got through step 1: record it, read the cache counters, shorten the timeout."""
    if plan.train.compile:
        cache.update(cachestate.hit_counters())
    status.enter("train", first_step_s=step_s, cache=cache)
    shorten_timeout(plan)
