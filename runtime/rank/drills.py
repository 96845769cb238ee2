"""Failure drills: make one rank raise, stall or die at a chosen stage, to rehearse the triage on CPU.

    MEGASPEC_FAULT="<rank>:<stage>[:<step>]:<raise|sleep|kill>"

`stage` is any stage of the receipt (`receipt.STAGES`); a drill fires when the rank enters that
stage (`RankStatus.enter`). `train` and `checkpoint` also take a step: `1:train:7:kill` fires
before step 7 (step 1 of a fresh run is `first-step`), `1:checkpoint:6:kill` before saving step
6; without a step they fire at the first chance. `kill` is SIGKILL (no Python error, like the OOM killer); `sleep` stalls for an hour (a
hung rank). The launcher checks the string before any rank starts, so a typo is an error, not a
drill that silently never fires.

Faults from outside the ranks are drilled once the run has logged step `<step>`:

    MEGASPEC_FAULT="launcher:<step>:<kill|term>"      the launcher SIGKILLs or SIGTERMs itself
    MEGASPEC_FAULT="fork-server:<step>:<kill|stop>"   the launcher SIGKILLs or SIGSTOPs its fork server
    MEGASPEC_FAULT="disk:<step>:full"                 saving step <step>'s checkpoint fails with ENOSPC
    MEGASPEC_FAULT="checkpoint:<step>:damage"         step <step>'s checkpoint is damaged once saved
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..contract.codes import LAUNCH_FAILED
from ..contract.errors import RunFailure
from ..contract.receipt import STAGES

ENV_VAR = "MEGASPEC_FAULT"
ACTIONS = ("raise", "sleep", "kill")
STEPPED_STAGES = ("train", "checkpoint")
STALL_S = 3600
OUTSIDE = {"launcher": ("kill", "term"), "fork-server": ("kill", "stop"), "disk": ("full",),
           "checkpoint": ("damage",)}
FORMAT = "<rank>:<stage>[:<step>]:<raise|sleep|kill> or <launcher|fork-server|disk|checkpoint>:<step>:<action>"


class DrillError(RunFailure):
    """A malformed MEGASPEC_FAULT: refused before launch."""

    code = LAUNCH_FAILED.code


@dataclass(frozen=True)
class Drill:
    rank: int
    stage: str
    step: int | None
    action: str

    def matches(self, rank: int, stage: str, step: int | None) -> bool:
        return (rank, stage) == (self.rank, self.stage) and (self.step is None or self.step == step)


@dataclass(frozen=True)
class OutsideDrill:
    """A fault from outside the ranks (see the module's docstring), at the first logged step >= `step`."""

    target: str
    step: int
    action: str


def parse(text: str, world_size: int) -> Drill | OutsideDrill:
    """A drill from its string, or a `DrillError` saying what is wrong and what is expected."""
    parts = text.split(":")
    if parts[0] in OUTSIDE:
        return _parse_outside(text, parts)
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


def _parse_outside(text: str, parts: list[str]) -> OutsideDrill:
    actions = OUTSIDE[parts[0]]
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < 1 or parts[2] not in actions:
        raise DrillError(f"{ENV_VAR}=`{text}`: expected `{parts[0]}:<step>:<{'|'.join(actions)}>`, "
                         f"e.g. `{parts[0]}:3:{actions[0]}`", stage="bootstrap")
    return OutsideDrill(target=parts[0], step=int(parts[1]), action=parts[2])


def outside(world_size: int) -> OutsideDrill | None:
    drill = from_env(world_size)
    return drill if isinstance(drill, OutsideDrill) else None


def launcher_hook(drill: OutsideDrill | None, server_pid: Callable[[], int | None]) -> Callable[[dict], None]:
    """The launcher's part of an outside drill, fed each progress event: signal itself or its fork server."""
    fired: list[bool] = []

    def on_event(event: dict) -> None:
        if drill is None or fired or event.get("step", 0) < drill.step or drill.target not in ("launcher", "fork-server"):
            return
        fired.append(True)
        pid = os.getpid() if drill.target == "launcher" else server_pid()
        sig = {"kill": signal.SIGKILL, "term": signal.SIGTERM, "stop": signal.SIGSTOP}[drill.action]
        if pid:
            os.kill(pid, sig)

    return on_event


def disk_full(step: int, path: str) -> None:
    """Raise ENOSPC here when this run drills a full disk at this step's checkpoint save."""
    drill = _worker_drill()
    if isinstance(drill, OutsideDrill) and (drill.target, drill.step) == ("disk", step):
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (drill {ENV_VAR})", path)


def damage_saved(step: int, folder: Path) -> None:
    """Flip 64 bytes in the middle of a shard of this step's saved checkpoint, when drilled."""
    drill = _worker_drill()
    if not (isinstance(drill, OutsideDrill) and (drill.target, drill.step) == ("checkpoint", step)):
        return
    shard = next(folder.glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    shard.write_bytes(bytes(data))


def from_env(world_size: int) -> Drill | OutsideDrill | None:
    """The drill this run rehearses, if any (the launcher calls this to refuse a bad one early)."""
    text = os.environ.get(ENV_VAR)
    return parse(text, world_size) if text else None


@cache
def _worker_drill() -> Drill | OutsideDrill | None:
    return from_env(int(os.environ.get("WORLD_SIZE", "1")))


def fire(rank: int, stage: str, step: int | None = None) -> None:
    """Raise, stall or die here when this run's drill names this rank and stage (and step)."""
    drill = _worker_drill()
    if not isinstance(drill, Drill) or not drill.matches(rank, stage, step):
        return
    if drill.action == "sleep":
        time.sleep(STALL_S)
    if drill.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"injected failure: rank {rank} stage {stage} step {step}")
