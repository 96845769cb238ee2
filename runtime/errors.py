"""Typed runtime failures (MS8xx, named in receipt.RUNTIME_CODES): what stages raise, who is blamed.

A rank that fails raises a `RunFailure` (or any exception, classified here); the launcher turns it
into the receipt's `error` {code, stage, rank, step, message, error_file}. Codes are stable: docs,
CI gates and runbooks key on them.

Failure drills: `MEGASPEC_FAULT="<rank>:<stage>[:<step>]:<raise|sleep|kill>"` makes one rank
raise, stall or die (SIGKILL, no Python error) at a stage, so the triage path (who is named,
which stage, which error file) can be rehearsed on CPU before it is needed on rented GPUs.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from .status import progress_of

STAGES = ("bootstrap", "init", "compile", "first-step", "train", "checkpoint", "receipt", "teardown")


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


def attribute(statuses: dict[int, dict[str, Any]], exitcodes: dict[int, int]) -> dict[str, Any]:
    """Name the rank that caused a failed run, from status files and the launcher's exit codes.

    In order: the first rank that raised a real error (not a peer symptom); a rank that died
    without a Python error (killed, segfault); a stall -- the rank that made the least progress,
    or, at equal progress, the rank that stayed silent while its peers timed out waiting for it
    (torchrun would blame a waiter); the first rank to fail at all.
    """
    errors = {r: s["error"] for r, s in statuses.items() if s.get("error")}
    causes = {r: e for r, e in errors.items() if e["code"] != "MS803"}
    if causes:
        rank = min(causes, key=lambda r: causes[r]["failed_ns"])
        return {"rank": rank, **causes[rank]}
    for rank, code in sorted(exitcodes.items()):
        if rank not in errors and code not in (0, -15):
            status = statuses.get(rank, {})
            return {"rank": rank, "code": "MS802", "stage": status.get("phase", "bootstrap"),
                    "step": status.get("last_step", 0) + 1,
                    "message": f"rank {rank} exited with code {code} without a Python error (killed or crashed)"}
    stalled = _staller(statuses, errors)
    if stalled is not None:
        return stalled
    if errors:
        rank = min(errors, key=lambda r: errors[r]["failed_ns"])
        return {"rank": rank, **errors[rank]}
    rank = min(exitcodes) if exitcodes else None
    return {"rank": rank, "code": "MS802", "stage": "bootstrap", "step": None,
            "message": "a rank failed before writing its status"}


def _staller(statuses: dict[int, dict[str, Any]], errors: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    """The rank the others waited for: strictly behind, or silent among the slowest while others timed out."""
    if not statuses:
        return None
    least = min(progress_of(s) for s in statuses.values())
    slowest = sorted(r for r, s in statuses.items() if progress_of(s) == least)
    ahead = [r for r in statuses if progress_of(statuses[r]) > least]
    silent = [r for r in slowest if r not in errors]
    if ahead:
        suspects, waiter = slowest, max(ahead, key=lambda r: progress_of(statuses[r]))
    elif errors and silent:
        suspects, waiter = silent, min(errors, key=lambda r: errors[r]["failed_ns"])
    else:
        return None
    rank = suspects[0]
    phase, step = statuses[rank].get("phase", "bootstrap"), int(statuses[rank].get("last_step", 0))
    also = f" (also behind: {', '.join(map(str, suspects[1:]))})" if len(suspects) > 1 else ""
    return {"rank": rank, "code": "MS803", "stage": phase if phase in STAGES else "bootstrap", "step": step + 1,
            "message": f"rank {rank} stalled in `{phase}` after step {step}{also} while rank {waiter} waited in "
                       f"`{statuses[waiter].get('phase')}`; the waiter's timeout is a symptom, not the cause"}
