"""Every process of a run dies with its launcher: nothing trains on, or writes, after it is gone.

The launcher starts the fork server, and the fork server forks the ranks. Each asks Linux to
SIGKILL it when its parent ends (`prctl(PR_SET_PDEATHSIG)`, as the lint workers do), and checks
that the parent did not end before that was armed. A SIGKILL of the launcher thus ends the fork
server, whose end ends the ranks. A rank also watches the launcher itself (a pidfd, readable once
the launcher has exited): where the fork server outlives the launcher (a parent-death signal is
bound to the thread that forked, and a stopped fork server reports nothing), the rank still ends.
Pure standard library: the fork server arms it before it imports torch.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading

LAUNCHER_PID_VAR = "MEGASPEC_LAUNCHER_PID"  # set by the launcher before it starts the fork server
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent ends; end it now when the parent already did."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def launcher_pid() -> int | None:
    """The launcher of this run, as it named itself to the fork server and the ranks."""
    text = os.environ.get(LAUNCHER_PID_VAR, "")
    return int(text) if text.isdigit() else None


def watch_launcher(pid: int | None) -> None:
    """A daemon thread that SIGKILLs this process once the launcher `pid` has exited."""
    try:
        fd = os.pidfd_open(pid) if pid else None
    except (AttributeError, OSError):  # gone already (ProcessLookupError), or no pidfd on this system
        fd = None
        if pid and not _alive(pid):
            os.kill(os.getpid(), signal.SIGKILL)
    if fd is None:
        return

    def wait() -> None:
        select.select([fd], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait, name="megaspec-lifeline", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
