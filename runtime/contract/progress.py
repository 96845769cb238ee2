"""progress.jsonl: rank 0's record of each logged step, tailed live by the launcher and read back
into the receipt when a failed run left no receipt of its own.

One JSON event per line, appended and flushed one at a time, so after a kill -9 the file holds
every logged step; a half-written last line is skipped. A log step writes
`{"step", "loss", "losses", "tokens_per_s", "eta_s"}`, where `losses` are the global losses of
every step since the previous event; a resumed run first writes `{"resumed_from": N, "losses"}`
with the checkpoint's losses of steps 1..N (no `step`: the live display skips it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rundir import PROGRESS_FILE

EventFn = Callable[[dict[str, Any]], None]


class ProgressLog:
    """Rank 0's progress: one human line per log step on stdout, one JSON line in the file."""

    def __init__(self, run_dir: Path, total_steps: int, enabled: bool, mirrors: list | None = None):
        self.path, self.total_steps, self.enabled = run_dir / PROGRESS_FILE, total_steps, enabled
        self.mirrors = mirrors or []  # runtime/train/tracking.py: each gets every event the file gets

    def resumed(self, step: int, losses: list[float]) -> None:
        self._write({"resumed_from": step, "losses": losses})

    def emit(self, step: int, losses: list[float], lr: float, step_s: float, tokens_per_step: int) -> None:
        if not self.enabled:
            return
        tokens_per_s = tokens_per_step / step_s
        eta_s = step_s * (self.total_steps - step)
        print(f"step {step:5d}/{self.total_steps} | loss {losses[-1]:.6f} | lr {lr:.2e} | "
              f"{step_s * 1000:.1f} ms | {tokens_per_s:,.0f} tok/s | eta {eta_s:.0f}s", flush=True)
        self._write({"step": step, "loss": losses[-1], "losses": losses, "tokens_per_s": tokens_per_s,
                     "eta_s": eta_s})

    def _write(self, event: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(event) + "\n")
            for mirror in self.mirrors:
                mirror.log(event)


def read_events(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The events of the complete lines from `offset` on, and the offset after the last complete line.

    A complete line that is not a JSON object (a line cut short by a kill, then appended to) is skipped."""
    if not path.exists():
        return [], offset
    events = []
    with open(path) as f:
        f.seek(offset)
        for line in f:
            if not line.endswith("\n"):
                break  # a half-written line: read it next time
            offset += len(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events, offset


@dataclass
class Record:
    """What progress.jsonl proves about a run: the global losses of steps 1..len(losses)."""

    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None


def read_record(run_dir: Path) -> Record:
    record = Record()
    for event in read_events(run_dir / PROGRESS_FILE)[0]:
        if "resumed_from" in event:
            record.resumed_from = event["resumed_from"]
        record.losses += event.get("losses", [])
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
