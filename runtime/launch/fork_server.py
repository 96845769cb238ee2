"""How the launcher starts its ranks: as forks of a fork server that imported the rank code once.

A spawned rank is a fresh interpreter that imports torch, DTensor, FSDP2, DCP and dynamo again:
about 3 s of CPU per rank, every rank at once on the same cores. torch elastic's
`start_method="forkserver"` forks each rank from a server process (`multiprocessing.forkserver`)
that started from a clean interpreter and imported all of that once (`preload.py`), so a rank
starts in milliseconds. The server is single-threaded in Python (torch's idle native thread aside,
as in PyTorch's fork-started DataLoader workers): unlike a fork of the launcher itself, a rank
inherits no launcher thread, lock or socket. `start_fork_server` is called as early as possible
(the compiler's local backend calls it before it imports torch), so the server's imports overlap
the launcher's own.

A fork inherits the server's environment, not the launcher's at launch time (the working directory
and `sys.path` are sent with each process), so a launch from a changed environment (a test's
monkeypatched variable, another drill) starts a new server. This module imports no torch.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver as forkserver
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..contract.errors import ForkServerLost, signal_name
from ..contract.rank_status import read_statuses
from . import lifeline

PRELOAD = ["megaspec.runtime.launch.preload"]
SOCKET_PATH_MAX = 107  # bytes of an AF_UNIX socket's path (sun_path holds 108 with the NUL)
SOCKET_SUFFIX_LEN = len("/pymp-12345678/listener-12345678")  # what multiprocessing adds to the temp dir
SHORT_TEMP = "/tmp"

_server_env: dict[str, str] | None = None  # the environment the running server was started with


def start_fork_server() -> str:
    """Start the fork server, or a new one when the environment changed since; the start method
    for torch elastic ("spawn" where this Python cannot stop a stale server)."""
    global _server_env
    os.environ[lifeline.LAUNCHER_PID_VAR] = str(os.getpid())  # the server and the ranks die with this process
    env = dict(os.environ)
    if _server_env is not None and _server_env != env:
        stop = getattr(forkserver._forkserver, "_stop", None)  # CPython's, since 3.8 (its test suite uses it)
        if stop is None:
            return "spawn"
        stop()
    multiprocessing.set_forkserver_preload(PRELOAD)
    try:
        with _temp_dir_for_sockets():
            forkserver.ensure_running()
    except OSError:  # no folder its socket fits in: the ranks are spawned (a slower start, the same run)
        return "spawn"
    _server_env = env
    return "forkserver"


@contextlib.contextmanager
def _temp_dir_for_sockets() -> Iterator[None]:
    """The server listens on a socket in a folder multiprocessing makes in the temp dir ($TMPDIR), once
    per process. A temp dir too long for a socket's path (a deep TMPDIR, as on macOS or some CI
    runners) failed the launch; while the server starts, that folder is made in /tmp instead."""
    before = tempfile.tempdir
    if len(os.fsencode(tempfile.gettempdir())) + SOCKET_SUFFIX_LEN > SOCKET_PATH_MAX:
        tempfile.tempdir = SHORT_TEMP
    try:
        yield
    finally:
        tempfile.tempdir = before


def run_rank(*args: Any) -> int:
    """What each rank runs (`dist.rank_main`), named here so that the launcher itself never imports
    the rank code: FSDP2, DTensor and sympy are a second of start-up it does not need. A rank
    dies with its parent (the fork server, or the launcher where it spawns) and with the launcher."""
    from .rank_main import rank_main

    _die_with_the_run()

    return rank_main(*args)


def _die_with_the_run() -> None:
    launcher = lifeline.launcher_pid()
    preload = sys.modules.get("megaspec.runtime.launch.preload")  # present in a fork of the server
    lifeline.die_with_parent(preload.SERVER_PID if preload else (launcher or os.getppid()))
    lifeline.watch_launcher(launcher)


def server_pid() -> int | None:
    """The running fork server's pid (None before one started, or with the "spawn" start method)."""
    return getattr(forkserver._forkserver, "_forkserver_pid", None)


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, exit status as waitpid reports it) of a process of this host; None once reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[49]) if len(fields) > 49 else 0


def lost(error: BaseException) -> BaseException:
    """`ForkServerLost` in place of the ranks' failure when the fork server died (its ranks die with it,
    torch elastic sees them exit 255) or was stopped under them; else `error` unchanged."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    pid = server_pid()
    state = _proc_state(pid) if pid else None
    if not isinstance(error, ChildFailedError) or pid is None or (state is not None and state[0] not in "ZXT"):
        return error
    if state is not None and state[0] == "T" or _stalled.get(pid):
        how = "was stopped (SIGSTOP) and never reported its ranks' ends; the launcher ended it"
    else:
        status = state[1] if state else 0
        how = f"died ({_how_it_died(status)})"
    return ForkServerLost(f"the fork server (pid {pid}) the ranks were forked from {how}; its ranks ended with it")


def _how_it_died(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal_name(os.WTERMSIG(status))}"
    return f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else "gone"


_stalled: dict[int, bool] = {}  # fork servers the watch ended because they were stopped


@contextlib.contextmanager
def watched(run_dir: Path) -> Iterator[None]:
    """While the ranks run: a fork server that is stopped (SIGSTOP) once every rank has exited cannot
    report their ends, and torch elastic would wait forever; the watch kills it, so the launch ends
    (and `lost` names it)."""
    done = threading.Event()
    pid = server_pid()

    def watch() -> None:
        while pid is not None and not done.wait(WATCH_S):
            state = _proc_state(pid)
            if state is not None and state[0] == "T" and _ranks_gone(run_dir):
                _stalled[pid] = True
                os.kill(pid, signal.SIGKILL)
                return

    thread = threading.Thread(target=watch, name="megaspec-fork-server-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


WATCH_S = 0.5


def _ranks_gone(run_dir: Path) -> bool:
    """Every rank that wrote a status file has exited (a zombie of the stopped server counts)."""
    states = read_statuses(run_dir)
    pids = [s.pid for s in states.values() if s.pid]
    return bool(pids) and all((_proc_state(p) or ("X", 0))[0] in "ZX" for p in pids)
