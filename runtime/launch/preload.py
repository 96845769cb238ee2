"""What the fork server imports before it forks ranks (`fork_server.PRELOAD`): the rank code and the
parts of torch a rank imports lazily on its first use, then a frozen GC and a hard exit.

Freezing after the imports is the Python docs' advice before `fork()`: the children's collections
never touch these objects, so their memory pages stay shared. The server exits when the launcher
and its ranks are gone, still holding the launcher's stdout and stderr: tearing down an
interpreter with torch in it (~0.5 s, ~0.2 s frozen) would keep a caller reading those pipes
waiting, and it has nothing to flush or clean up, so it ends with `os._exit` (its ranks, forked
from it, end in `os._exit` anyway and never run this). It dies with the launcher (`lifeline.py`).
"""

from __future__ import annotations

import atexit
import gc
import os

from . import lifeline

SERVER_PID = os.getpid()  # the ranks' parent: a rank forked from this server dies with it
lifeline.die_with_parent(lifeline.launcher_pid() or os.getppid())  # before torch's imports (seconds)

import torch._dynamo  # noqa: E402, F401 - imported by a rank's first meta-device init and its optimizer (~0.8 s)

from . import fork_server, rank_main  # noqa: E402, F401 - everything a rank imports at module level; its entry point

gc.freeze()
atexit.register(os._exit, 0)
