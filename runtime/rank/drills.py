"""Failure drills: make one rank raise, stall or die at a chosen stage, to rehearse the triage on CPU.

    MEGASPEC_FAULT="<rank>:<stage>[:<step>]:<raise|sleep|kill>"

`stage` is any stage of the receipt (`receipt.STAGES`); a drill fires when the rank enters that
stage (`RankStatus.enter`). `train` and `checkpoint` also take a step: `1:train:7:kill` fires
before step 7 (step 1 of a fresh run is `first-step`), `1:checkpoint:6:kill` before saving step
6; without a step they fire at the first chance. `kill` is SIGKILL (no Python error, like the OOM killer); `sleep` stalls for an hour (a
hung rank). The launcher checks the string before any rank starts, so a typo is an error, not a
drill that silently never fires.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from functools import cache

from ..contract.errors import RunFailure
from ..contract.receipt import STAGES

ENV_VAR = "MEGASPEC_FAULT"
ACTIONS = ("raise", "sleep", "kill")
STEPPED_STAGES = ("train", "checkpoint")
STALL_S = 3600
FORMAT = "<rank>:<stage>[:<step>]:<raise|sleep|kill>"


class DrillError(RunFailure):
    """A malformed MEGASPEC_FAULT: refused before launch."""

    code = "MS808"


@dataclass(frozen=True)
class Drill:
    rank: int
    stage: str
    step: int | None
    action: str

    def matches(self, rank: int, stage: str, step: int | None) -> bool:
        return (rank, stage) == (self.rank, self.stage) and (self.step is None or self.step == step)


def parse(text: str, world_size: int) -> Drill:
    """A drill from its string, or a `DrillError` saying what is wrong and what is expected."""
    parts = text.split(":")
    problem = _problem(parts, world_size)
    if problem:
        raise DrillError(f"{ENV_VAR}=`{text}`: {problem}; expected {FORMAT}, e.g. `1:train:3:kill`",
                         stage="bootstrap")
    step = int(parts[2]) if len(parts) == 4 else None
    return Drill(rank=int(parts[0]), stage=parts[1], step=step, action=parts[-1])


def _problem(parts: list[str], world_size: int) -> str | None:
    if len(parts) not in (3, 4):
        return f"{len(parts)} fields"
    if not parts[0].isdigit() or int(parts[0]) >= world_size:
        return f"rank `{parts[0]}` is not one of 0..{world_size - 1}"
    if parts[1] not in STAGES:
        return f"stage `{parts[1]}` is not one of {', '.join(STAGES)}"
    if parts[-1] not in ACTIONS:
        return f"action `{parts[-1]}` is not one of {', '.join(ACTIONS)}"
    if len(parts) == 4 and parts[1] not in STEPPED_STAGES:
        return f"only {' and '.join(STEPPED_STAGES)} take a step"
    if len(parts) == 4 and (not parts[2].isdigit() or int(parts[2]) < 1):
        return f"step `{parts[2]}` is not a step number (1 or more)"
    if len(parts) == 4 and parts[1] == "train" and int(parts[2]) == 1:
        return "step 1 is the `first-step` stage: drill it as `<rank>:first-step:<action>`"
    return None


def from_env(world_size: int) -> Drill | None:
    """The drill this run rehearses, if any (the launcher calls this to refuse a bad one early)."""
    text = os.environ.get(ENV_VAR)
    return parse(text, world_size) if text else None


@cache
def _worker_drill() -> Drill | None:
    return from_env(int(os.environ.get("WORLD_SIZE", "1")))


def fire(rank: int, stage: str, step: int | None = None) -> None:
    """Raise, stall or die here when this run's drill names this rank and stage (and step)."""
    drill = _worker_drill()
    if drill is None or not drill.matches(rank, stage, step):
        return
    if drill.action == "sleep":
        time.sleep(STALL_S)
    if drill.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"injected failure: rank {rank} stage {stage} step {step}")
