"""Typed runtime failures: what a stage raises, and the MS8xx code of any exception a rank dies of.

A rank that fails raises a `RunFailure` (or any exception, classified by `code_for`); its status
file records the code, and `triage` turns the statuses into the receipt's `error` {code, stage,
rank, step, message, error_file}. The codes and their names live in `codes.py`; they are stable:
docs, CI gates and runbooks key on them.

Failure drills: `MEGASPEC_FAULT="<rank>:<stage>[:<step>]:<raise|sleep|kill>"` makes one rank
raise, stall or die (SIGKILL, no Python error) at a stage, so the triage path (who is named,
which stage, which error file) can be rehearsed on CPU before it is needed on rented GPUs.
"""

from __future__ import annotations

import os
import signal
import time

# Messages of errors a rank sees when a *peer* died or stalled: they are consequences, not causes.
_PEER_SYMPTOMS = ("timed out", "timeout", "connection closed by peer", "connection reset by peer",
                  "broken pipe", "watchdog", "nccl communicator was aborted", "socket closed")


class RunFailure(Exception):
    """A failure the runtime understands: it carries its code and, once known, its stage."""

    code = "MS802"

    def __init__(self, message: str, *, stage: str | None = None, step: int | None = None):
        super().__init__(message)
        self.stage = stage
        self.step = step


class NonFiniteLossError(RunFailure):
    code = "MS801"

    def __init__(self, step: int, loss: float):
        super().__init__(f"loss is {loss} at step {step}; lower `train.lr` or check the data", step=step)


class InsufficientDataError(RunFailure):
    code = "MS805"


class CheckpointError(RunFailure):
    code = "MS806"


class CacheSeedMissingError(RunFailure):
    code = "MS807"


class CacheSeedMismatchError(RunFailure):
    code = "MS812"


def is_peer_symptom(message: str) -> bool:
    """True when an error text describes waiting on, or losing, another rank."""
    low = message.lower()
    return any(s in low for s in _PEER_SYMPTOMS)


def code_for(exc: BaseException) -> str:
    if isinstance(exc, RunFailure):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return "MS809"
    return "MS803" if is_peer_symptom(str(exc)) else "MS802"


def maybe_inject_fault(rank: int, stage: str, step: int | None = None) -> None:
    """Raise or stall here when a failure drill names this rank, stage (and step)."""
    drill = os.environ.get("MEGASPEC_FAULT")
    if not drill:
        return
    parts = drill.split(":")
    want_rank, want_stage, action = int(parts[0]), parts[1], parts[-1]
    want_step = int(parts[2]) if len(parts) == 4 else None
    if want_rank != rank or want_stage != stage or (want_step is not None and want_step != step):
        return
    if action == "sleep":
        time.sleep(3600)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise RuntimeError(f"injected failure: rank {rank} stage {stage} step {step}")
