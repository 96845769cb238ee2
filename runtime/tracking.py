"""Trackers: rank 0's per-step record (`progress.jsonl`) mirrored to TensorBoard event files.

The mirror gets exactly the events `progress.jsonl` gets, in the same call (`progress.ProgressLog`),
so the two never disagree: `train/loss` at every step, `train/tokens_per_s` at each logged step; it is flushed at every logged step, because a rank ends with `os._exit` (no atexit
flush). Without the `tensorboard` package the run still trains and says once that it wrote no
event files; the receipt names the event folder only when event files are really there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plan import Plan
from .receipt import TrackingReport


def tensorboard_dir(plan: Plan, run_dir: Path) -> Path | None:
    if plan.tracking is None:
        return None
    if plan.tracking.tensorboard_dir:
        return Path(plan.tracking.tensorboard_dir) / (plan.run.run_id or Path(run_dir).name)
    return Path(run_dir) / "tensorboard"


class TensorBoardMirror:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log(self, event: dict[str, Any]) -> None:
        """One progress event: every step's loss it carries (`losses` ends at `step`), and its tokens/s."""
        step = event.get("step")
        if step is None:
            return  # a resume marker: those steps were mirrored by the attempt that ran them
        losses = event.get("losses") or [event["loss"]]
        for i, loss in enumerate(losses):
            self.writer.add_scalar("train/loss", loss, step - len(losses) + 1 + i)
        if event.get("tokens_per_s") is not None:
            self.writer.add_scalar("train/tokens_per_s", event["tokens_per_s"], step)
        self.writer.flush()


def open_mirrors(plan: Plan, run_dir: Path) -> list[TensorBoardMirror]:
    """The plan's trackers on this (main) rank; none when tracking is off or its package is missing."""
    log_dir = tensorboard_dir(plan, run_dir)
    if log_dir is None:
        return []
    try:
        return [TensorBoardMirror(log_dir)]
    except ImportError:
        print("megaspec: tracking.tensorboard is on but the `tensorboard` package is not installed; "
              "no event files are written (add `tensorboard` to image.packages)", flush=True)
        return []


def report(plan: Plan, run_dir: Path) -> TrackingReport | None:
    """For the receipt: the event folder, when event files were written there."""
    log_dir = tensorboard_dir(plan, run_dir)
    if log_dir is None:
        return None
    written = log_dir.is_dir() and any(log_dir.glob("events.out.tfevents.*"))
    return TrackingReport(tensorboard_dir=str(log_dir) if written else None)
