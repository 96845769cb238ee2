"""Many runs at once: the run directories under a path, each brought up to date (`status`, `collect DIR`).

`run_dirs(path)` lists a run directory, or every run directory under a runs or sweep directory,
oldest launch first. `refresh(dirs)` reads each manifest; unfinished Modal runs get one immediate
poll each, concurrently on one connected client (at most `MAX_POLLS` in flight); unfinished local
runs are checked against the process that launched them (`local_process.py`), and one that is gone
ends `error` (orphaned). Nothing else touches a run, so a refresh is as safe to repeat as `collect`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_FILE, BackendError, Manifest, read_manifest
from .sweep_manifest import SWEEP_FILE

MAX_POLLS = 16  # polls in flight at once: enough to hide latency, few enough not to trip rate limits


@dataclass(frozen=True)
class RunView:
    """One run after a refresh: its manifest (None when unreadable) and what stopped a refresh of it."""

    run_dir: Path
    manifest: Manifest | None
    problem: str | None = None


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
    from .backends.modal_client import connect

    connect(echo)  # once: a rejected token or an unreachable Modal is one error, not one per run
    with ThreadPoolExecutor(max_workers=min(MAX_POLLS, len(dirs)), thread_name_prefix="megaspec-poll") as pool:
        return list(pool.map(_poll_one, dirs))


def _poll_one(run_dir: Path) -> RunView:
    from .backends.modal_collect import collect

    try:
        return RunView(run_dir, collect(run_dir))
    except BackendError as e:
        return RunView(run_dir, read_manifest(run_dir), str(e))
