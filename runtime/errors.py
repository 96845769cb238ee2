"""Typed runtime failures (MS8xx): what every stage raises, and what the receipt records.

A rank that fails raises a `RunFailure` (or any exception, classified here); the launcher turns it
into the receipt's `error` {code, stage, rank, step, message, error_file}. Codes are stable: docs,
CI gates and runbooks key on them.

Failure drills: `MEGASPEC_FAULT="<rank>:<stage>[:<step>]:<raise|sleep>"` makes one rank raise or
stall at a stage, so the triage path (who is named, which stage, which error file) can be
rehearsed on CPU before it is needed on rented GPUs.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .status import progress_of

STAGES = ("bootstrap", "init", "compile", "first-step", "train", "checkpoint", "receipt", "teardown")

CODES = {
    "MS801": "non-finite-loss",
    "MS802": "rank-crashed",
    "MS803": "rank-stalled",
    "MS804": "teardown-fault",
    "MS805": "insufficient-data",
    "MS806": "checkpoint-failed",
    "MS807": "cache-seed-missing",
    "MS808": "launch-failed",
    "MS809": "interrupted",
    "MS810": "validation-failed",
    "MS811": "cache-state-mixed",
}

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
    raise RuntimeError(f"injected failure: rank {rank} stage {stage} step {step}")


def attribute(statuses: dict[int, dict[str, Any]], exitcodes: dict[int, int]) -> dict[str, Any]:
    """Name the rank that caused a failed run, from status files and the launcher's exit codes.

    In order: the first rank that raised a real error (not a peer symptom); a rank that died
    without a Python error (killed, segfault); the rank that made the least progress while
    others waited (a stall: torchrun would blame the waiter); the first rank to fail at all.
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
    stalled = _laggard(statuses)
    if stalled is not None:
        return stalled
    if errors:
        rank = min(errors, key=lambda r: errors[r]["failed_ns"])
        return {"rank": rank, **errors[rank]}
    rank = min(exitcodes) if exitcodes else None
    return {"rank": rank, "code": "MS802", "stage": "bootstrap", "step": None,
            "message": "a rank failed before writing its status"}


def _laggard(statuses: dict[int, dict[str, Any]]) -> dict[str, Any] | None:
    if not statuses:
        return None
    lag = min(statuses, key=lambda r: progress_of(statuses[r]))
    lead = max(statuses, key=lambda r: progress_of(statuses[r]))
    if progress_of(statuses[lag]) >= progress_of(statuses[lead]):
        return None
    phase, lead_phase = statuses[lag].get("phase", "bootstrap"), statuses[lead].get("phase")
    step = int(statuses[lag].get("last_step", 0))
    return {"rank": lag, "code": "MS803", "stage": phase if phase in STAGES else "bootstrap", "step": step + 1,
            "message": f"rank {lag} never left `{phase}` (last step {step}) while rank {lead} waited in "
                       f"`{lead_phase}`; the waiter's timeout is a symptom, not the cause"}
