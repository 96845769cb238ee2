"""Triage: how a launch ended -> the receipt's status, its error (the rank at fault) and diagnostics.

The rank blamed is the one that stopped first, never the peer that reported its absence: a real
error beats a peer symptom, a rank that died without a Python error beats the ranks that waited
on it, and a stall is pinned on the rank that made the least progress.
"""

from __future__ import annotations

import signal
from typing import Any

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

from ..contract.codes import (
    CACHE_STATE_MIXED,
    INTERRUPTED,
    LAUNCH_FAILED,
    RANK_CRASHED,
    RANK_STALLED,
    TEARDOWN_FAULT,
)
from ..contract.errors import (
    ForkServerLost,
    RunFailure,
    TimedOut,
    code_for,
    failure_message,
    is_peer_gone,
    signal_name,
    signal_of,
    storage_error,
)
from ..contract.plan import Plan
from ..contract.rank_status import RankError, RankState
from ..contract.receipt import STAGES, Receipt, RunError
from ..state import cachestate

# How a rank that a signal stopped (not a crash) exits: SIGTERM or SIGINT, sent from outside the launcher.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def triage(plan: Plan, receipt: Receipt, statuses: dict[int, RankState], dumps: dict[int, str],
           launch_error: BaseException | None) -> dict[str, Any]:
    """status, error and diagnostics for the receipt, from how the launch ended."""
    diagnostics = list(receipt.diagnostics)
    _, ranks_agree = cachestate.agreed_state([s.cache for s in statuses.values() if s.cache])
    if not ranks_agree:
        diagnostics.append(RunError(code=CACHE_STATE_MIXED.code, stage="compile", rank=None, step=1,
                                    message="ranks started from different compile-cache states; seed every rank"))
    if launch_error is None:
        return {"status": receipt.status, "error": receipt.error, "diagnostics": diagnostics}
    if isinstance(launch_error, (KeyboardInterrupt, SignalException)):  # Ctrl-C, or SIGTERM (preemption)
        return {"status": "interrupted", "error": launcher_stopped(launch_error, statuses), "diagnostics": diagnostics}
    if isinstance(launch_error, ForkServerLost):
        return fork_server_lost(launch_error, receipt, statuses, diagnostics)
    if isinstance(launch_error, RunFailure):
        return {"status": "error", "diagnostics": diagnostics,
                "error": RunError(code=launch_error.code, stage=launch_error.stage or "bootstrap", rank=None,
                                  step=None, message=str(launch_error))}
    if not isinstance(launch_error, ChildFailedError):
        return {"status": "error", "diagnostics": diagnostics,
                "error": RunError(code=code_for(launch_error) if storage_error(launch_error) else LAUNCH_FAILED.code,
                                  stage="bootstrap", rank=None, step=None, message=failure_message(launch_error))}
    exitcodes = {rank: f.exitcode for rank, f in launch_error.failures.items()}
    if plan.distributed.nodes == 1:
        for rank in range(plan.distributed.world_size):
            statuses.setdefault(rank, RankState(rank=rank))
    culprit = attribute(statuses, exitcodes)
    if receipt.status in ("ok", "diverged") and all(s.phase in ("teardown", "done") for s in statuses.values()):
        diagnostics.append(RunError(code=TEARDOWN_FAULT.code, stage="teardown", rank=culprit["rank"], step=None,
                                    message=f"rank {culprit['rank']} failed after the receipt was written: "
                                            f"{culprit['message']}", error_file=dumps.get(culprit["rank"])))
        return {"status": receipt.status, "error": None, "diagnostics": diagnostics}
    error = RunError(code=culprit["code"], stage=culprit["stage"], rank=culprit["rank"], step=culprit["step"],
                     message=culprit["message"], error_file=dumps.get(culprit["rank"]))
    return {"status": "interrupted" if error.code == INTERRUPTED.code else "error", "error": error, "diagnostics": diagnostics}


def fork_server_lost(lost: ForkServerLost, receipt: Receipt, statuses: dict[int, RankState],
                     diagnostics: list[RunError]) -> dict[str, Any]:
    """MS816 naming the fork server, never a rank: the run's error while the ranks trained (at the step of
    the rank furthest behind), a diagnostic only when every rank had finished and the receipt was written."""
    if receipt.status in ("ok", "diverged") and statuses and all(s.phase in ("teardown", "done")
                                                                 for s in statuses.values()):
        diagnostics.append(RunError(code=lost.code, stage="teardown", rank=None, step=None, message=str(lost)))
        return {"status": receipt.status, "error": None, "diagnostics": diagnostics}
    behind = min(statuses.values(), key=lambda s: s.progress()) if statuses else None
    stage = behind.phase if behind is not None and behind.phase in STAGES else "bootstrap"
    return {"status": "error", "diagnostics": diagnostics,
            "error": RunError(code=lost.code, stage=stage, rank=None, step=behind.failing_step() if behind else None,
                              message=str(lost))}


def launcher_stopped(launch_error: BaseException, statuses: dict[int, RankState]) -> RunError:
    """MS809 for a launcher a signal stopped: which signal, and where each rank was when it stopped them.
    No rank is blamed; the stage and step are those of the rank that was furthest behind."""
    said = str(launch_error) if isinstance(launch_error, TimedOut) else \
        f"the launcher received {signal_name(signal_of(launch_error))}"
    if not statuses:
        return RunError(code=INTERRUPTED.code, stage="bootstrap", rank=None, step=None, message=f"{said} before any rank started")
    where = ", ".join(f"rank {r} in `{s.phase}` after step {s.last_step}" for r, s in sorted(statuses.items()))
    behind = statuses[min(statuses, key=lambda r: statuses[r].progress())]
    return RunError(code=INTERRUPTED.code, stage=behind.phase if behind.phase in STAGES else "teardown", rank=None,
                    step=behind.failing_step(), message=f"{said} and stopped the ranks: {where}")


def attribute(statuses: dict[int, RankState], exitcodes: dict[int, int]) -> dict[str, Any]:
    """Name the rank that caused a failed run, from status files and the launcher's exit codes.

    In order: the first rank that raised a real error (not a peer symptom); a rank that died
    without a Python error (killed, segfault), or that a SIGTERM or SIGINT sent to it alone stopped
    (MS809: the run was interrupted); a stall -- the rank that made the least progress, or, at equal
    progress, the rank that stayed silent while its peers waited for it (torchrun would blame a
    waiter), named as dead (MS802) when its peers lost their connection to it; the first rank to
    fail at all.
    """
    errors = {r: s.error for r, s in statuses.items() if s.error}
    causes = {r: e for r, e in errors.items() if e.code != RANK_STALLED.code}
    if causes:
        rank = min(causes, key=lambda r: causes[r].failed_ns)
        return {"rank": rank, **causes[rank].model_dump()}
    for rank, code in sorted(exitcodes.items()):
        if rank not in errors and code != 0:
            status = statuses.get(rank) or RankState(rank=rank)
            found = {"rank": rank, "stage": status.phase, "step": status.failing_step()}
            if -code in STOP_SIGNALS:  # the launcher signals its ranks only after a first failure, never this one
                return {**found, "code": INTERRUPTED.code,
                        "message": f"rank {rank} was stopped by {signal_name(-code)} from outside the launcher, in "
                                   f"`{found['stage']}` after step {status.last_step}"}
            return {**found, "code": RANK_CRASHED.code,
                    "message": f"rank {rank} exited with code {code} without a Python error (killed or crashed)"}
    stalled = _staller(statuses, errors)
    if stalled is not None:
        return stalled
    if errors:
        rank = min(errors, key=lambda r: errors[r].failed_ns)
        return {"rank": rank, **errors[rank].model_dump()}
    rank = min(exitcodes) if exitcodes else None
    return {"rank": rank, "code": RANK_CRASHED.code, "stage": "bootstrap", "step": None,
            "message": "a rank failed before writing its status"}


def _staller(statuses: dict[int, RankState], errors: dict[int, RankError]) -> dict[str, Any] | None:
    """The rank the others waited for: strictly behind, or silent among the slowest while others timed out."""
    if not statuses:
        return None
    least = min(s.progress() for s in statuses.values())
    slowest = sorted(r for r, s in statuses.items() if s.progress() == least)
    ahead = [r for r in statuses if statuses[r].progress() > least]
    silent = [r for r in slowest if r not in errors]
    if ahead:
        suspects, waiter = slowest, max(ahead, key=lambda r: statuses[r].progress())
    elif errors and silent:
        suspects, waiter = silent, min(errors, key=lambda r: errors[r].failed_ns)
    else:
        return None
    rank = suspects[0]
    phase, step = statuses[rank].phase, statuses[rank].last_step
    also = f" (also behind: {', '.join(map(str, suspects[1:]))})" if len(suspects) > 1 else ""
    found = {"rank": rank, "stage": phase if phase in STAGES else "bootstrap", "step": statuses[rank].failing_step()}
    waited = errors[waiter].message if waiter in errors else ""
    if is_peer_gone(waited):  # its process closed the connection: it died, whichever exit the launcher saw first
        return {**found, "code": RANK_CRASHED.code,
                "message": f"rank {rank} exited in `{phase}` after step {step} without a Python error (killed or "
                           f"crashed){also}: rank {waiter} lost its connection to it"}
    return {**found, "code": RANK_STALLED.code,
            "message": f"rank {rank} stalled in `{phase}` after step {step}{also} while rank {waiter} waited in "
                       f"`{statuses[waiter].phase}`; the waiter's timeout is a symptom, not the cause"}
