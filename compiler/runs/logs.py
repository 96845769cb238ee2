"""`megaspec logs`: what a run printed.

A local run's ranks write `logs/<id>/attempt_<n>/<rank>/stdout.log` and `stderr.log` (torch
elastic's redirects); they are shown rank by rank, each line prefixed `[rank N]`, and followed
(`-f`) line by line as they grow, interleaved by arrival, until the run ends. A Modal run's logs
come through the client (`FunctionCall.logs`): the latest entries, or a stream that Modal ends when
the call finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from megaspec.runtime.contract.files import UnreadableFile, read_tail
from megaspec.runtime.contract.rundir import attempt_log_dirs

from .manifest import BackendError

TAIL_ENTRIES = 500  # Modal entries shown without -f
FOLLOW_INTERVAL_S = 0.5


def local_log_files(run_dir: Path) -> list[tuple[int, Path]]:
    """(rank, file) of the latest attempt, rank order, stdout before stderr."""
    attempts = sorted(attempt_log_dirs(run_dir), key=lambda p: (p.parent.name, _attempt(p)))
    if not attempts:
        return []
    ranks = sorted((int(d.name), d) for d in attempts[-1].iterdir() if d.is_dir() and d.name.isdigit())
    return [(rank, d / name) for rank, d in ranks for name in ("stdout.log", "stderr.log") if (d / name).is_file()]


def _attempt(path: Path) -> int:
    tail = path.name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def print_local(run_dir: Path, echo: Callable[[str], None]) -> int:
    """Every line so far, rank by rank (the last READ_CAPS["log"] bytes of each); the number of lines shown."""
    shown = 0
    for rank, path in local_log_files(run_dir):
        shown += _print_from(path, 0, f"[rank {rank}] ", echo, partial=True)[1]
    return shown


def follow_local(run_dir: Path, echo: Callable[[str], None], finished: Callable[[], bool]) -> None:
    """New lines of every rank as they are written, until `finished()` and the files are drained."""
    offsets: dict[Path, int | None] = {}  # None: a log refused once (a link, a FIFO), said once
    while True:
        done = finished()  # asked before the last read, so nothing written before the end is lost
        for rank, path in local_log_files(run_dir):
            if (offset := offsets.get(path, 0)) is not None:
                offsets[path] = _print_new(path, offset, f"[rank {rank}] ", echo)
        if done:
            return
        time.sleep(FOLLOW_INTERVAL_S)


def _print_new(path: Path, offset: int, prefix: str, echo: Callable[[str], None]) -> int | None:
    """Complete lines after `offset`; returns the offset after the last one (a partial line waits), or
    None when the log is refused."""
    return _print_from(path, offset, prefix, echo, partial=False)[0]


def _print_from(path: Path, offset: int, prefix: str, echo: Callable[[str], None], *, partial: bool
                ) -> tuple[int | None, int]:
    """The lines after `offset` (with a last partial one when `partial`), through the bounded reader:
    a log that is a link or no regular file is one line saying so, a long one shows its tail.
    Returns the offset after the last line printed (None for a refused log) and the number of lines."""
    try:
        start, data = read_tail(path, "log", offset)
    except UnreadableFile as e:
        echo(f"{prefix}{e}")
        return None, 1
    if start > offset:
        echo(f"{prefix}[{start - offset:,} earlier bytes not shown]")
    end = len(data) if partial else data.rfind(b"\n") + 1
    lines = data[:end].decode("utf-8", errors="replace").splitlines()
    for line in lines:
        echo(prefix + line)
    return start + end, len(lines)


def modal_entries(call_id: str, app_id: str | None, *, follow: bool) -> Iterator[str]:
    """The call's log messages through the client: the latest `TAIL_ENTRIES`, or a stream to the call's end."""
    import modal

    from .backends.modal_client import describe, within

    logs = modal.FunctionCall.from_id(call_id).logs
    try:  # a stream lasts as long as the call; the tail is one answer, bounded like every other
        entries = logs.stream() if follow else within(f"the last {TAIL_ENTRIES} log entries of `{call_id}`",
                                                      lambda: list(logs.tail(entries=TAIL_ENTRIES)))
        for entry in entries:
            yield entry.message
    except modal.exception.Error as e:
        raise BackendError(f"Modal's log service failed for `{call_id}`: {describe(e)}",
                           hint=f"Try again, or read them with `modal app logs {app_id or 'APP_ID'}`") from e
