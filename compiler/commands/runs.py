"""`megaspec status`, `collect`, `cancel` and `logs`: see runs, advance them, stop a Modal run, read its output."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import click

from megaspec.runtime.contract.rundir import MANIFEST_FILE

from ..runs.manifest import BackendError
from ..safe_text import clear_screen, read_back
from .run_output import EXIT_FAILED, EXIT_OK, exit_code, fail, print_outcome, require_manifest

WATCH_INTERVAL_S = 10.0


def _stderr(line: str) -> None:
    click.echo(line, err=True)


def _refreshed(path: Path):
    from ..runs.refresh import refresh, run_dirs
    from ..runs.sweep_manifest import is_sweep_dir

    dirs = run_dirs(path)
    if not dirs:
        fail(f"no runs under `{path}` (no */{MANIFEST_FILE})", "Pass a runs directory, such as `runs`, or a run directory")
    try:
        views = refresh(dirs, echo=_stderr)
        return _filled_sweep(path, dirs, views) if is_sweep_dir(path) else views
    except BackendError as e:
        fail(str(e), e.hint, e.code)


def _filled_sweep(sweep_dir: Path, dirs: list[Path], views: list):
    """A sweep's queued Modal runs launched into the slots that finished runs freed (runs/sweep_launch.py)."""
    from ..runs.refresh import refresh
    from ..runs.sweep_launch import fill_slots

    launched = fill_slots(sweep_dir, echo=_stderr)
    if not launched.run_ids:
        return views
    polled = {v.run_dir: v for v in views}
    return [_kept(v, polled[v.run_dir]) for v in refresh(dirs, echo=_stderr, poll_modal=False)]


def _kept(fresh, polled):
    """A run's view read again after the launches, with what its poll found besides the manifest (a poll
    that failed, why its progress is missing)."""
    if fresh.manifest is None or polled.manifest is None:
        return fresh
    return replace(fresh, problem=polled.problem, hint=polled.hint, progress_problem=polled.progress_problem)


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@read_back
def collect(path: str) -> None:
    """Poll PATH (a run directory, or every unfinished run under a runs directory) once; safe to repeat.

    Exit codes: 0 every run ok or still going, 1 a run did not succeed (error, interrupted,
    cancelled) or could not be read, 2 usage.
    """
    run_path = Path(path)
    if (run_path / MANIFEST_FILE).is_file():
        raise click.exceptions.Exit(_collect_one(run_path))
    codes = []
    for view in _refreshed(run_path):
        if view.manifest is None or view.problem:
            click.echo(f"{view.run_dir.name}: {view.problem}")
            codes.append(EXIT_FAILED)
            continue
        error = view.manifest.error
        said = f"  error[{error.stage}]: {error.message.splitlines()[0]}" if error else ""
        click.echo(f"{view.run_dir.name}: {view.manifest.state}{said}")
        codes.append(exit_code(view.manifest))
    raise click.exceptions.Exit(EXIT_FAILED if EXIT_FAILED in codes else EXIT_OK)


def _collect_one(run_dir: Path) -> int:
    from ..runs.backends.modal_collect import open_run
    from ..runs.refresh import refresh

    before = require_manifest(run_dir)
    try:
        if not before.is_terminal and before.backend == "modal":
            open_run(run_dir, "collect", "")  # a run never spawned is refused before connecting
        view = refresh([run_dir], echo=_stderr)[0]
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    if view.problem:
        fail(view.problem, view.hint or "Check `modal token info` and the network, then collect again; the run is "
                                        "untouched")
    manifest = view.manifest
    if manifest.is_terminal:
        print_outcome(run_dir, manifest)
        return exit_code(manifest)
    if manifest.backend == "local":
        click.echo(f"state: {manifest.state} (local run, still running as pid {manifest.process.pid}); its "
                   "receipt appears when it ends" if manifest.process else f"state: {manifest.state} (local run)")
        return EXIT_OK
    click.echo(f"state: {manifest.state} (polled {manifest.last_polled_at}); run `megaspec collect {run_dir}` again later")
    for note in manifest.notes:
        click.echo(f"note: {note}")
    return EXIT_OK


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@read_back
def cancel(run_dir: str) -> None:
    """Cancel a run. A Modal run: stop the call, terminate its containers, end the manifest `interrupted`,
    and copy the progress it committed to its Volume into RUN_DIR. A local run: signal its launcher as Ctrl-C would, and wait until it has ended the run `interrupted`."""
    path = Path(run_dir)
    before = require_manifest(path)
    if before.backend == "local":
        _cancel_local(path, before)
        return
    from ..runs.backends.modal_client import connect
    from ..runs.backends.modal_collect import cancel as cancel_run
    from ..runs.backends.modal_collect import open_run

    try:
        open_run(path, "cancel", "A local run stops with Ctrl-C in the terminal running it (its receipt says "
                                 "`interrupted`)")
        if not before.is_terminal:
            connect(_stderr)
        cancelled = cancel_run(path)
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    manifest = cancelled.manifest
    if cancelled.progress_problem:
        _stderr(f"note: {cancelled.progress_problem}")
    if cancelled.stopped:
        click.echo(f"cancelled {manifest.run_id} ({manifest.modal.function_call_id}); state: {manifest.state}")
        return
    if before.is_terminal:
        click.echo(f"{manifest.run_id} already ended `{manifest.state}`; nothing to cancel")
        return
    click.echo(f"{manifest.run_id} had already ended on Modal: nothing to cancel; collected instead")
    print_outcome(path, manifest)


def _cancel_local(path: Path, before) -> None:
    from ..runs.local_cancel import cancel_local

    try:
        done = cancel_local(path, before)
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    manifest = done.manifest
    if done.signalled is None:
        click.echo(f"{manifest.run_id} already ended `{manifest.state}`; nothing to cancel")
        return
    click.echo(f"cancelled {manifest.run_id}: sent {done.signalled}; state: {manifest.state}")


@click.command()
@click.argument("path", default="runs", type=click.Path(file_okay=False))
@click.option("--watch", is_flag=True, help=f"Refresh every {WATCH_INTERVAL_S:.0f} s until every run has finished.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run, for machines.")
@read_back
def status(path: str, watch: bool, as_json: bool) -> None:
    """One row per run under PATH, by launch time (queued runs last), then a count per state; unfinished
    runs are polled once each first. A running run shows its step / planned steps, last loss, tokens/s,
    elapsed time and ETA (a local run from its progress.jsonl; a Modal run from the progress.jsonl it
    commits to its results Volume, copied into its run folder by each poll). When a Modal run's
    progress cannot be had (nothing committed yet, no Volume, Modal out of reach) the row shows its
    elapsed time and DETAIL (`--json`: `progress_problem`) says why.

    Exits 0 when no run ended in `error`, 1 when one did (or when it cannot list the runs: no run under
    PATH, Modal out of reach), 2 usage.
    """
    from ..runs.status_view import format_table, ordered, view_json

    while True:
        views = ordered(_refreshed(Path(path)))
        if as_json:
            click.echo(json.dumps([view_json(v) for v in views], indent=2))
        else:
            if watch:
                clear_screen()
            click.echo(format_table(views))
        unfinished = [v for v in views if v.manifest is not None and not v.manifest.is_terminal]
        if not watch or not unfinished:
            failed = any(v.manifest is not None and v.manifest.state == "error" for v in views)
            raise click.exceptions.Exit(EXIT_FAILED if failed else EXIT_OK)
        time.sleep(WATCH_INTERVAL_S)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@read_back
def logs(run_dir: str, follow: bool) -> None:
    """What RUN_DIR's run printed: a local run's ranks (each line `[rank N]`), or a Modal run's logs."""
    from megaspec.runtime.contract.rundir import ATTEMPTS_DIR, archived_attempts

    path = Path(run_dir)
    manifest = require_manifest(path)
    if done := archived_attempts(path):  # said first: a run not spawned again yet has no logs of its own
        _stderr(f"attempt {done + 1} of this run; the earlier ones: "
                + ", ".join(f"`megaspec logs {path / ATTEMPTS_DIR / str(n)}`" for n in range(1, done + 1)))
    try:
        if manifest.backend == "local":
            _local_logs(path, follow)
        else:
            _modal_logs(path, manifest, follow)
    except BackendError as e:
        fail(str(e), e.hint, e.code)


def _local_logs(run_dir: Path, follow: bool) -> None:
    from ..runs.logs import follow_local, print_local
    from ..runs.refresh import refresh

    if not follow:
        if print_local(run_dir, click.echo) == 0:
            _stderr(f"no log lines yet under `{run_dir / 'logs'}`")
        return
    ended = []

    def finished() -> bool:
        ended[:] = [refresh([run_dir], echo=_stderr)[0].manifest]
        return ended[0] is None or ended[0].is_terminal

    follow_local(run_dir, click.echo, finished)
    _stderr(f"run ended: {ended[0].state if ended[0] else 'unreadable manifest'}")


def _modal_logs(run_dir: Path, manifest, follow: bool) -> None:
    from ..runs.backends.modal_client import connect
    from ..runs.logs import modal_entries
    from ..runs.refresh import refresh

    if manifest.modal is None or manifest.modal.function_call_id is None:
        fail(f"`{run_dir}` was never spawned on Modal (state `{manifest.state}`); it has no logs")
    connect(_stderr)
    for message in modal_entries(manifest.modal.function_call_id, manifest.modal.app_id, follow=follow):
        click.echo(message, nl=False)
    if follow:  # Modal ends the stream when the call finishes; the poll says what that made of the run
        _stderr(f"log stream ended; run state: {refresh([run_dir], echo=_stderr)[0].manifest.state}")


COMMANDS = [collect, cancel, status, logs]
