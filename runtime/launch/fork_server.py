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

import multiprocessing
import multiprocessing.forkserver as forkserver
import os
import sys
from typing import Any

from . import lifeline

PRELOAD = ["megaspec.runtime.launch.preload"]

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
    forkserver.ensure_running()
    _server_env = env
    return "forkserver"


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
