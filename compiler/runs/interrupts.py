"""Signals that end a Modal command, as exceptions: Ctrl-C, SIGTERM and SIGHUP alike.

Python turns only Ctrl-C into an exception; SIGTERM (a closed CI job, `kill`) and SIGHUP (a closed
terminal) end the process where it stands. While a launch or a wait talks to Modal, `raising_signals`
turns all three into `Signalled` (a KeyboardInterrupt, so Modal's client disconnects as it does on
Ctrl-C), so the manifest still gets the app id and a truthful state, and the command exits
128 + the signal, as shells report it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Signalled(KeyboardInterrupt):
    """The command received `signum` (SIGINT for Ctrl-C)."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


def signalled(signum: int) -> int:
    """The exit code of a command that a signal stopped: 128 + the signal, as shells report it (130 for
    Ctrl-C, 143 for SIGTERM); the run it was running ends `interrupted`."""
    return 128 + signum


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


def signum_of(interrupt: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: a plain KeyboardInterrupt is Ctrl-C."""
    return interrupt.signum if isinstance(interrupt, Signalled) else signal.SIGINT


@contextlib.contextmanager
def raising_signals() -> Iterator[None]:
    """Each of SIGNALS raises `Signalled` in the main thread during the block; the handlers that were
    there are back afterwards. Elsewhere than the main thread (where Python delivers signals) nothing
    changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, _frame):
        raise Signalled(signum)

    previous = {s: signal.signal(s, interrupt) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Each of SIGNALS held back during the block (a few file writes that must land together: a manifest
    never left half changed) and raised again once it ends, to the handler that was there before.
    Elsewhere than the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: held.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if held:
            signal.raise_signal(held[0])
