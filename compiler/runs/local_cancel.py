"""`megaspec cancel` of a local run: signal the process that launched it, as its terminal would.

The launch records the launcher's pid, host and start time (`local_process.py`). A launcher that
leads its own process group (started from a shell with job control) gets SIGINT sent to that group,
exactly what Ctrl-C in its terminal sends; one that shares its caller's group (started by a script)
gets SIGTERM alone, so the caller is never signalled. Either way the launcher stops its ranks and
writes its receipt and an `interrupted` manifest, which this waits for. No Modal import.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .local_process import end_if_orphaned, is_gone
from .manifest import BackendError, LocalProcess, Manifest, read_manifest

CANCEL_WAIT_S = 120.0  # a hang guard: the launcher ends the run within seconds of the signal
POLL_S = 0.1


@dataclass(frozen=True)
class LocalCancel:
    manifest: Manifest
    signalled: str | None  # what was sent to whom; None when the run had already ended


def cancel_local(run_dir: Path, manifest: Manifest) -> LocalCancel:
    """Stop a running local run and wait for its launcher to end it; a finished or orphaned run is left as is."""
    manifest = end_if_orphaned(run_dir, manifest)
    if manifest.is_terminal:
        return LocalCancel(manifest, None)
    process = _launcher(run_dir, manifest)
    signalled = _signal(process.pid)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while not manifest.is_terminal and not is_gone(process):
        if time.monotonic() > deadline:
            raise BackendError(f"the launcher of `{run_dir}` (pid {process.pid}) got {signalled} but has not ended "
                               f"the run in {CANCEL_WAIT_S:.0f} s", hint=f"Stop it with `kill -9 {process.pid}`; "
                               "`megaspec status` then ends the run `error` (orphaned)")
        time.sleep(POLL_S)
        manifest = read_manifest(run_dir)
    return LocalCancel(end_if_orphaned(run_dir, read_manifest(run_dir)), signalled)


def _launcher(run_dir: Path, manifest: Manifest) -> LocalProcess:
    process = manifest.process
    if process is None:
        raise BackendError(f"`{run_dir}` records no launcher process (state `{manifest.state}`); nothing to signal",
                           hint="A run that never started has nothing to cancel")
    if process.host != socket.gethostname():
        raise BackendError(f"`{run_dir}` runs on host `{process.host}`, not this one",
                           hint=f"Run `megaspec cancel {run_dir}` on `{process.host}`")
    if process.pid == os.getpid():
        raise BackendError(f"`{run_dir}` is being run by this very process", hint="Stop it with Ctrl-C")
    return process


def _signal(pid: int) -> str:
    """SIGINT to the launcher's own process group (Ctrl-C), else SIGTERM to the launcher alone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGINT)
            return f"SIGINT to its process group {pid} (as Ctrl-C in its terminal)"
        os.kill(pid, signal.SIGTERM)
        return f"SIGTERM to its launcher (pid {pid})"
    except ProcessLookupError:
        return f"nothing: its launcher (pid {pid}) had just exited"
    except PermissionError:
        raise BackendError(f"the launcher (pid {pid}) belongs to another user", hint="Cancel it as that user") from None
