"""Many runs at once: the run directories under a path, each brought up to date (`status`, `collect DIR`).

`run_dirs(path)` lists a run directory, or every run directory under a runs or sweep directory,
oldest launch first. `refresh(dirs)` reads each manifest; unfinished Modal runs get one immediate
poll each, concurrently on one connected client (at most `MAX_POLLS` in flight, each answered within
`POLL_TIMEOUT_S` or reported as unknown, never waited for), and after its answer the run's
progress.jsonl is copied from its Volume into the run folder (`modal_volume.fetch_progress`; once more
in the poll that sees the run end), in the same thread and time; unfinished local
runs are checked against the process that launched them (`local_process.py`), and one that is gone
ends `error` (orphaned). Nothing else touches a run, so a refresh is as safe to repeat as `collect`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from megaspec.runtime.contract.rundir import MANIFEST_FILE

from .manifest import BackendError, Manifest, read_manifest
from .sweep_manifest import SWEEP_FILE

MAX_POLLS = 16  # polls in flight at once: enough to hide latency, few enough not to trip rate limits
POLL_TIMEOUT_S = 20.0  # one poll's answer; a poll takes milliseconds, the connect before them is bounded apart


@dataclass(frozen=True)
class RunView:
    """One run after a refresh: its manifest (None when unreadable) and what stopped a refresh of it."""

    run_dir: Path
    manifest: Manifest | None
    problem: str | None = None
    hint: str | None = None  # what to do about the problem, when the one who found it knows
    progress_problem: str | None = None  # why this refresh left no fresh progress (a Modal run's Volume copy)


def run_dirs(path: Path) -> list[Path]:
    """`path` itself when it is a run directory, else the run directories under it, oldest launch first.

    Those are the directories just under `path`, and those of each sweep just under it
    (`runs/<sweep-id>/<run-id>/`), so `status runs` shows every run, swept or not.
    """
    path = Path(path)
    if (path / MANIFEST_FILE).is_file():
        return [path]
    found = [p.parent for p in path.glob(f"*/{MANIFEST_FILE}")]
    found += [p.parent for sweep in path.glob(f"*/{SWEEP_FILE}") for p in sweep.parent.glob(f"*/{MANIFEST_FILE}")]
    return sorted(found, key=lambda d: (_launched_at(d), d.name))


def _launched_at(run_dir: Path) -> str:
    try:
        return read_manifest(run_dir).transitions[0].at
    except (ValueError, OSError):
        return ""  # unreadable manifests sort first, where they are seen


def refresh(dirs: list[Path], *, echo: Callable[[str], None], poll_modal: bool = True) -> list[RunView]:
    """Each run's view, unfinished ones refreshed; a Modal problem (unreachable, rejected) is raised once."""
    views = [_read(d) for d in dirs]
    views = [_refresh_local(v) for v in views]
    pending = [v.run_dir for v in views if _needs_poll(v)]
    if pending and poll_modal:
        polled = dict(zip(pending, _poll_all(pending, echo), strict=True))
        views = [polled.get(v.run_dir, v) for v in views]
    return views


def _read(run_dir: Path) -> RunView:
    try:
        return RunView(run_dir, read_manifest(run_dir))
    except (ValueError, OSError) as e:
        return RunView(run_dir, None, f"unreadable manifest: {str(e).splitlines()[0]}")


def _needs_poll(view: RunView) -> bool:
    m = view.manifest
    return (m is not None and not m.is_terminal and m.backend == "modal" and m.modal is not None
            and m.modal.function_call_id is not None)


def _refresh_local(view: RunView) -> RunView:
    m = view.manifest
    if m is None or m.is_terminal or m.backend != "local":
        return view
    from .local_process import end_if_orphaned

    return RunView(view.run_dir, end_if_orphaned(view.run_dir, m))


def _poll_all(dirs: list[Path], echo: Callable[[str], None]) -> list[RunView]:
    """One poll per run, at most MAX_POLLS at once, each given POLL_TIMEOUT_S from its start. A run whose
    poll has not answered by then (or never got a slot: every slot hung) is reported unknown, with its
    manifest as stored; one whose progress copy has not finished by then is shown as polled, with a
    `progress_problem` saying so. Each poll runs in a daemon thread, so neither this call nor the process
    exit waits for a hung one (a poll ends in atomic writes: stopped, it leaves the old files)."""
    from .backends.modal_client import connect

    connect(echo)  # once: a rejected token or an unreachable Modal is one error, not one per run
    slots, answers = threading.BoundedSemaphore(MAX_POLLS), {}
    started: list[tuple[threading.Thread, float]] = []

    def poll(run_dir: Path) -> None:
        try:
            view = _poll_one(run_dir)
            answers[run_dir] = replace(view, progress_problem=f"progress not read: its Volume did not answer "
                                                              f"within {POLL_TIMEOUT_S:.0f} s")
            answers[run_dir] = _with_progress(view)
        except Exception as e:  # noqa: BLE001 - raised again below, in the caller's thread
            answers[run_dir] = e
        finally:
            slots.release()

    for run_dir in dirs:
        if not slots.acquire(timeout=POLL_TIMEOUT_S):
            break  # every slot is held by a poll that has not answered
        thread = threading.Thread(target=poll, args=(run_dir,), name="megaspec-poll", daemon=True)
        thread.start()
        started.append((thread, time.monotonic()))
    for thread, at in started:
        thread.join(max(0.0, at + POLL_TIMEOUT_S - time.monotonic()))
    views = [answers.get(d) or _unanswered(d) for d in dirs]
    failed = next((v for v in views if isinstance(v, Exception)), None)
    if failed is not None:
        raise failed
    return views


def _unanswered(run_dir: Path) -> RunView:
    manifest = read_manifest(run_dir)
    return RunView(run_dir, manifest, f"Modal did not answer within {POLL_TIMEOUT_S:.0f} s; the run is unchanged "
                                      f"(last known state: {manifest.state}): ask again")


def _poll_one(run_dir: Path) -> RunView:
    from .backends.modal_collect import collect

    try:
        return RunView(run_dir, collect(run_dir))
    except BackendError as e:
        return RunView(run_dir, read_manifest(run_dir), str(e), e.hint)


def _with_progress(view: RunView) -> RunView:
    """The polled run with its progress.jsonl copied from its Volume, or with why not (nothing is
    copied for a poll that failed: the Volume is as far away as the call)."""
    from .backends.modal_volume import fetch_progress

    if view.problem is not None or view.manifest is None:
        return view
    return replace(view, progress_problem=fetch_progress(view.run_dir, view.manifest))
