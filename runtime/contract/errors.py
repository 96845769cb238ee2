"""Typed runtime failures: what a stage raises, and the MS8xx code of any exception a rank dies of.

A rank that fails raises a `RunFailure` (or any exception, classified by `code_for`); its status
file records the code, and `triage` turns the statuses into the receipt's `error` {code, stage,
rank, step, message, error_file}. The codes and their names live in `codes.py`; they are stable:
docs, CI gates and runbooks key on them.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
from collections.abc import Iterator

from .codes import (
    CACHE_SEED_MISMATCH,
    CACHE_SEED_MISSING,
    CHECKPOINT_FAILED,
    FORK_SERVER_LOST,
    INSUFFICIENT_DATA,
    INTERRUPTED,
    LAUNCH_FAILED,
    NON_FINITE_LOSS,
    RANK_CRASHED,
    RANK_STALLED,
    STORAGE_FAILED,
    USER_MODEL_FAILED,
)

# Messages of errors a rank sees when a *peer* died or stalled: they are consequences, not causes.
# The first ones say the peer's process closed its end (it exited: killed or crashed), the others
# that it stopped answering (a stall, or a death that only a timeout noticed).
_PEER_GONE = ("connection closed by peer", "connection reset by peer", "broken pipe", "socket closed")
_PEER_SYMPTOMS = (*_PEER_GONE, "timed out", "timeout", "watchdog", "nccl communicator was aborted")


class RunFailure(Exception):
    """A failure the runtime understands: it carries its code and, once known, its stage."""

    code = RANK_CRASHED.code

    def __init__(self, message: str, *, stage: str | None = None, step: int | None = None):
        super().__init__(message)
        self.stage = stage
        self.step = step


class PlanMismatch(RunFailure):
    """The plan is not the one the generated app was compiled for (its image and GPUs were decided for
    that one): certain to fail again, so it ends in the receipt, never in an exception Modal retries."""

    code = LAUNCH_FAILED.code

    def __init__(self, found: str, compiled_for: str):
        super().__init__(f"plan {found[:12]} was not compiled into this app ({compiled_for[:12]}); compile and "
                         "apply the spec again", stage="bootstrap")


class NonFiniteLossError(RunFailure):
    code = NON_FINITE_LOSS.code

    def __init__(self, step: int, loss: float):
        super().__init__(f"loss is {loss} at step {step}; lower `train.lr` or check the data", step=step)


class InsufficientDataError(RunFailure):
    code = INSUFFICIENT_DATA.code


class CheckpointError(RunFailure):
    code = CHECKPOINT_FAILED.code


class CacheSeedMissingError(RunFailure):
    code = CACHE_SEED_MISSING.code


class CacheSeedMismatchError(RunFailure):
    code = CACHE_SEED_MISMATCH.code


class UserModelError(RunFailure):
    """The user's model (`model.entry`) could not be imported, built or run: always the bootstrap stage,
    the message naming the user's file (and line, when the traceback reaches it)."""

    code = USER_MODEL_FAILED.code

    def __init__(self, message: str):
        super().__init__(message, stage="bootstrap")


class StorageError(RunFailure):
    """A file the run needed could not be written or opened: a full disk, a read-only or forbidden
    folder, too many open files. The message names the path and the errno."""

    code = STORAGE_FAILED.code


class ForkServerLost(RunFailure):
    """The fork server the ranks were forked from died or stopped answering; no rank is to blame."""

    code = FORK_SERVER_LOST.code


# The OSErrors that are the storage's (or the process's file table's) fault, not the run's code.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE,
                            errno.ENFILE, errno.EIO})


def storage_error(exc: BaseException | None) -> OSError | None:
    """The storage OSError behind `exc`: itself, its cause or context, or one of DCP's per-rank failures."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc
        for failure in (getattr(exc, "failures", None) or {}).values():  # DCP's CheckpointException
            found = storage_error(failure[0] if isinstance(failure, tuple) else failure)
            if found is not None:
                return found
        exc = exc.__cause__ or exc.__context__
    return None


def describe_storage(error: OSError) -> str:
    """`No space left on device (ENOSPC): `path``: what failed, where, and its errno's name."""
    name = errno.errorcode.get(error.errno or 0, str(error.errno))
    where = f": `{error.filename}`" if error.filename else ""
    return f"{error.strerror or error} ({name}){where}"


def failure_message(exc: BaseException) -> str:
    """What a rank died of in one line: `Type: message`, with the path and errno of a storage failure."""
    storage = storage_error(exc)
    if storage is None:
        return f"{type(exc).__name__}: {exc}"
    if storage is exc:
        return f"{type(exc).__name__}: {describe_storage(storage)}"
    text = str(exc).strip()
    said = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
    return said if describe_storage(storage) in said else f"{said} ({describe_storage(storage)})"


class Interrupted(KeyboardInterrupt):
    """The launcher was stopped by a signal (Ctrl-C's SIGINT, SIGTERM); raised once the receipt is written."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


def signal_of(interrupt: BaseException) -> int:
    """The signal an interruption came from: `Interrupted.signum`, torch elastic's `SignalException.sigval`,
    else SIGINT (Python turns only SIGINT into a bare KeyboardInterrupt)."""
    signum = getattr(interrupt, "signum", None) or getattr(interrupt, "sigval", None)
    return int(signum) if signum is not None else int(signal.SIGINT)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# What torch elastic handles once the ranks start (its TORCHELASTIC_SIGNALS_TO_HANDLE default); it never
# puts the handlers back, so a later Ctrl-C would raise its SignalException where KeyboardInterrupt is caught.
ELASTIC_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # what would end the launcher without a word: raise instead


@contextlib.contextmanager
def launcher_signals() -> Iterator[None]:
    """While the launcher runs: a SIGTERM or SIGHUP raises `Interrupted`, as Ctrl-C raises KeyboardInterrupt (while
    the launcher prepares, fork server, seed, data, rendezvous, it would otherwise die without a
    receipt) until torch elastic installs its own handlers for the ranks; on exit every handler is the
    caller's again, elastic's replaced. Only the main thread can set handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise Interrupted(signum, f"the launcher received {signal_name(signum)}")

    saved = {sig: signal.getsignal(sig) for sig in ELASTIC_SIGNALS}
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:  # None: set outside Python, cannot be put back
                signal.signal(sig, handler)


class TimedOut(Interrupted):
    """The run outlived `resources.timeout` on this machine (Modal ends an attempt there itself)."""


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise `TimedOut` in the main thread once `seconds` have passed (SIGALRM, so a blocking call, a
    FIFO's open included, is interrupted too); elsewhere nothing is armed."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, _frame: object) -> None:
        raise TimedOut(signum, f"the run exceeded {what}")

    saved = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved)


def is_peer_symptom(message: str) -> bool:
    """True when an error text describes waiting on, or losing, another rank."""
    low = message.lower()
    return any(s in low for s in _PEER_SYMPTOMS)


def is_peer_gone(message: str) -> bool:
    """True when an error text says a peer's process closed its connection (it exited)."""
    low = message.lower()
    return any(s in low for s in _PEER_GONE)


def code_for(exc: BaseException) -> str:
    """The code of what a rank died of; a failure caused by a peer's absence is that symptom (MS803),
    not its wrapper's code: a checkpoint save that lost its peer is not a checkpoint fault."""
    if isinstance(exc, RunFailure) and exc.__cause__ is not None and is_peer_symptom(str(exc.__cause__)):
        return RANK_STALLED.code
    if not isinstance(exc, StorageError) and storage_error(exc) is not None:
        return StorageError.code
    if isinstance(exc, RunFailure):
        return exc.code
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED.code
    return RANK_STALLED.code if is_peer_symptom(str(exc)) else RANK_CRASHED.code
