"""The process behind a local run: recorded at launch, checked by `status` and `collect`.

A local run killed with SIGKILL (or lost with its machine) never writes its last manifest, so it
would read `running` forever. The launch records the launching process's pid, host and start
time; a later refresh on the same host that finds that pid gone, or reused by a younger process,
ends the run `error` (orphaned), keeping what its progress and rank status files recorded.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from megaspec.runtime.contract.files import UnreadableFile, read_text_capped
from megaspec.runtime.contract.progress import read_events
from megaspec.runtime.contract.rank_status import read_statuses
from megaspec.runtime.contract.rundir import PROGRESS_FILE, RECEIPT_FILE

if TYPE_CHECKING:
    from megaspec.runtime.contract.receipt import Receipt

from .manifest import (
    LocalProcess,
    Manifest,
    ManifestError,
    advance,
    finish_from_receipt,
    parse_receipt,
    write_manifest,
)


def this_process() -> LocalProcess:
    pid = os.getpid()
    return LocalProcess(pid=pid, host=socket.gethostname(), started_at=_start_time(pid))


def _start_time(pid: int) -> float | None:
    """The process's start as a Unix time (Linux /proc), to tell it from a later process with the same pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return round(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def is_gone(process: LocalProcess) -> bool:
    """True when the process is known to be gone; False when alive or when this host cannot tell."""
    if process.host != socket.gethostname():
        return False
    try:
        os.kill(process.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by someone else
    if _is_zombie(process.pid):  # it has exited; its parent has not collected it yet
        return True
    now = _start_time(process.pid)
    return process.started_at is not None and now is not None and abs(now - process.started_at) > 1.0


def end_if_orphaned(run_dir: Path, manifest: Manifest) -> Manifest:
    """A local run whose process is gone, ended `error` with what it last recorded; else unchanged.
    While one of its ranks still runs, it is not over (the ranks die with the launcher: a moment)."""
    if manifest.is_terminal or manifest.process is None or not is_gone(manifest.process) or living_ranks(run_dir):
        return manifest
    p = manifest.process
    receipt = _receipt_of(run_dir, manifest)
    if receipt is not None:  # written, then not recorded here (the disk filled): it says why the run ended
        manifest = finish_from_receipt(manifest, receipt)
        manifest = manifest.model_copy(update={"notes": [
            *manifest.notes, f"the process that ran it (pid {p.pid}) ended before it recorded its receipt here"]})
    else:
        message = (f"orphaned: the process that ran it (pid {p.pid} on {p.host}) is gone without finishing "
                   f"(killed, e.g. SIGKILL or out of memory, or the machine restarted; its fork server and "
                   f"ranks ended with it); {last_recorded(run_dir)}")
        manifest = advance(manifest, "error", error=ManifestError(stage="remote", message=message))
    try:
        write_manifest(run_dir, manifest)
    except OSError as e:  # a full or read-only disk: say it now, record it on a later refresh
        return manifest.model_copy(update={"notes": [*manifest.notes, f"not recorded in the manifest: {e}"]})
    return manifest


def _receipt_of(run_dir: Path, manifest: Manifest) -> Receipt | None:
    """This run's receipt in its folder, read without writing anything; None if there is none of its own."""
    try:
        receipt = parse_receipt(read_text_capped(run_dir / RECEIPT_FILE, "receipt"))
    except (UnreadableFile, ValueError):
        return None
    return receipt if (receipt.run_id, receipt.plan.sha256) == (manifest.run_id, manifest.plan_sha256) else None


def living_ranks(run_dir: Path) -> list[str]:
    """`rank N (pid P)` for each rank of the run whose process still runs on this host."""
    living = []
    for number, state in read_statuses(run_dir).items():
        if state.pid is None or state.host is None or state.started_ns is None:
            continue
        rank = LocalProcess(pid=state.pid, host=state.host, started_at=_start_time(state.pid))
        born_s = state.started_ns / 1e9
        # the same pid, started before the rank wrote its status file (not a later process reusing it)
        if not is_gone(rank) and rank.started_at is not None and rank.started_at <= born_s + 1.0:
            living.append(f"rank {number} (pid {rank.pid})")
    return living


def last_recorded(run_dir: Path) -> str:
    """What the run's progress and per-rank status files say it reached (through their bounded readers)."""
    try:
        steps = [e["step"] for e in read_events(run_dir / PROGRESS_FILE)[0] if "step" in e]
    except UnreadableFile:
        steps = []
    phases = [f"rank {rank} in `{state.phase}` at step {state.last_step}"
              for rank, state in read_statuses(run_dir).items()]
    said = [f"last step recorded: {steps[-1]}" if steps else "no step recorded", *phases]
    return "; ".join(said)
