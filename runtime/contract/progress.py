"""progress.jsonl: rank 0's record of each logged step, tailed live by the launcher and read back
into the receipt when a failed run left no receipt of its own.

One JSON event per line, appended and flushed one at a time, so after a kill -9 the file holds
every logged step; a half-written last line is skipped. A log step writes
`{"step", "loss", "losses", "lr", "grad_norm", "tokens_per_s", "eta_s"}`, where `losses` are the
global losses of every step since the previous event and `lr` and `grad_norm` (before clipping)
are the logged step's; an evaluation (`train.eval`) writes `{"eval": {"step", "loss"}}`; a resumed
run first writes `{"resumed_from": N, "losses", "evals"}` with the checkpoint's losses of steps 1..N
and its evaluations (no `step`: the live display skips it). Each event also has `at`, the UTC time it
was written (`clock.utc_now()`): how old a step is, even in a copy of the file (a Modal run's, fetched
from its Volume); files written before `at` existed still read (`event_or_none`).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clock import parse_utc, utc_now
from .files import UnreadableFile, loads_bounded, read_bytes_capped
from .rundir import PROGRESS_FILE

EventFn = Callable[[dict[str, Any]], None]


class ProgressLog:
    """Rank 0's progress: one human line per log step on stdout, one JSON line in the file."""

    def __init__(self, run_dir: Path, total_steps: int, enabled: bool, mirrors: list | None = None):
        self.path, self.total_steps, self.enabled = run_dir / PROGRESS_FILE, total_steps, enabled
        self.mirrors = mirrors or []  # runtime/train/tracking.py: each gets every event the file gets

    def resumed(self, step: int, losses: list[float], evals: list[dict[str, Any]]) -> None:
        self._write({"resumed_from": step, "losses": losses, "evals": evals})

    def emit(self, step: int, losses: list[float], lr: float, grad_norm: float, step_s: float,
             tokens_per_step: int) -> None:
        if not self.enabled:
            return
        tokens_per_s = tokens_per_step / step_s
        eta_s = step_s * (self.total_steps - step)
        print(f"step {step:5d}/{self.total_steps} | loss {losses[-1]:.6f} | lr {lr:.2e} | grad norm {grad_norm:.3f} | "
              f"{step_s * 1000:.1f} ms | {tokens_per_s:,.0f} tok/s | eta {eta_s:.0f}s", flush=True)
        self._write({"step": step, "loss": losses[-1], "losses": losses, "lr": lr, "grad_norm": grad_norm,
                     "tokens_per_s": tokens_per_s, "eta_s": eta_s})

    def evaluated(self, step: int, loss: float) -> None:
        if self.enabled:
            print(f"eval  {step:5d}/{self.total_steps} | val loss {loss:.6f}", flush=True)
        self._write({"eval": {"step": step, "loss": loss}})

    def _write(self, event: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps({**event, "at": utc_now()}) + "\n")
            for mirror in self.mirrors:
                mirror.log(event)


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The events of the complete lines from `offset` on, and the offset after the last complete line.

    Read through the bounded reader (a regular file of at most READ_CAPS["progress"] bytes; otherwise
    UnreadableFile); a line that is no event (`event_or_none`) is skipped, so whatever someone left
    in the file never reaches a reader as anything but an event of the documented shape.
    """
    if not path.exists():
        return [], offset
    data = read_bytes_capped(path, "progress", offset=offset)
    end = data.rfind(b"\n") + 1  # a half-written last line: read it next time
    events = [event_or_none(line) for line in data[:end].splitlines()]
    return [e for e in events if e is not None], offset + end


TAIL_BYTES = 1 << 16  # the end of progress.jsonl that holds its last step event (a line is ~200 bytes)


def last_step(run_dir: Path) -> dict[str, Any] | None:
    """The last step event of `run_dir`'s progress.jsonl, read from its last TAIL_BYTES (a line cut at
    the start of that read is no event and is skipped), else from the whole file (a line longer than
    that at its end, a long resume marker); None when there is none or it cannot be read."""
    path = run_dir / PROGRESS_FILE
    try:
        start = max(0, path.stat().st_size - TAIL_BYTES)
        steps = [e for e in read_events(path, start)[0] if "step" in e]
        if not steps and start > 0:
            steps = [e for e in read_events(path)[0] if "step" in e]
    except (OSError, UnreadableFile):
        return None
    return steps[-1] if steps else None


MAX_LOSS = 3.5e38  # a loss is an fp32 number: anything larger is not one (and overflows a plot's range)
_NUMBER_FIELDS = ("loss", "tokens_per_s", "eta_s", "lr", "grad_norm")


def event_or_none(line: bytes) -> dict[str, Any] | None:
    """One line as an event: an object whose `step`/`resumed_from` are counts, whose `loss`,
    `tokens_per_s`, `eta_s`, `lr` and `grad_norm` are numbers, whose `losses` is a list of losses,
    whose `eval` (one evaluation) and `evals` (a list of them) are `{"step": count, "loss": number}`
    and whose `at`, when there, is a UTC time (`clock.utc_now()`'s format); else None."""
    try:
        event = loads_bounded(line.decode("utf-8"))
    except ValueError:  # not UTF-8, not JSON, nested too deep, or an integer too long to convert
        return None
    if not isinstance(event, dict):
        return None
    counts_ok = all(_is_count(event[k]) for k in ("step", "resumed_from") if k in event)
    numbers_ok = all(event[k] is None or _is_real(event[k]) for k in _NUMBER_FIELDS if k in event)
    losses = event.get("losses", [])
    losses_ok = isinstance(losses, list) and all(_is_real(x) for x in losses)
    evals = [event["eval"]] if "eval" in event else event.get("evals", [])
    evals_ok = isinstance(evals, list) and all(_is_eval(e) for e in evals)
    at_ok = "at" not in event or _is_utc(event["at"])
    return event if counts_ok and numbers_ok and losses_ok and evals_ok and at_ok else None


def written_before(event: dict[str, Any], time: str) -> bool:
    """Whether `event` was written before `time` (UTC): an earlier attempt's, for a run done again in its
    folder whose Volume folder keeps the old progress.jsonl until the new container moves it to
    `attempts/<n>/`. An event without `at` (an older file) is not judged."""
    return "at" in event and parse_utc(event["at"]) < parse_utc(time)


def _is_utc(value: Any) -> bool:
    """A timestamp with its UTC offset (a time without one cannot be compared with `utc_now()`)."""
    if not isinstance(value, str) or len(value) > 40:
        return False
    try:
        return parse_utc(value).utcoffset() is not None
    except ValueError:
        return False


def _is_eval(value: Any) -> bool:
    return isinstance(value, dict) and _is_count(value.get("step")) and _is_real(value.get("loss"))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62


def _is_real(value: Any) -> bool:
    """A real number within fp32's range (NaN and the infinities included: a diverged step)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return math.isnan(value) or math.isinf(value) or abs(value) <= MAX_LOSS


@dataclass
class Record:
    """What progress.jsonl proves about a run: the global losses of steps 1..len(losses), and the
    validation losses (`{"step", "loss"}`) of the evaluations it logged."""

    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)


def read_record(run_dir: Path) -> Record:
    """The record of `run_dir`'s progress.jsonl; an empty one when the file is unreadable (UnreadableFile)."""
    record = Record()
    try:
        events = read_events(run_dir / PROGRESS_FILE)[0]
    except UnreadableFile:
        return record
    for event in events:
        if "resumed_from" in event:
            record.resumed_from = event["resumed_from"]
        record.losses += event.get("losses", [])
        record.evals += event.get("evals", [])  # a resume marker's, from its checkpoint
        if "eval" in event:
            record.evals.append(event["eval"])
    return record


class ProgressTail:
    """Tails progress.jsonl in a thread and hands each event to `on_event`."""

    def __init__(self, run_dir: Path, on_event: EventFn | None):
        self.path, self.on_event, self.offset = run_dir / PROGRESS_FILE, on_event, 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProgressTail:
        if self.on_event:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on_event:
            self.stop_flag.set()
            self.thread.join()

    def _run(self) -> None:
        while not self.stop_flag.wait(0.2):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        events, self.offset = read_events(self.path, self.offset)
        for event in events:
            self.on_event(event)
