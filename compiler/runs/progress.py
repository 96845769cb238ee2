"""Live progress for `megaspec apply --target local`: the runtime's step events, made readable.

On a terminal one line is rewritten in place (step/total, loss, tokens/s, ETA); anywhere else
(CI logs, pipes) events become plain lines, so logs stay greppable and free of control
characters, throttled as training loggers do: the first and last step, every tenth of the run,
and otherwise at most one step line per `PLAIN_INTERVAL_S` (phase messages always print). The runtime calls the display from its launcher thread through `run_plan(on_event=)`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_CLEAR_LINE = "\r\x1b[K"
PLAIN_INTERVAL_S = 30.0
PLAIN_MILESTONES = 10  # step lines at each tenth of the run, whatever the time


def format_eta(eta_s: float | None) -> str:
    if eta_s is None or eta_s < 0:
        return "--:--"
    minutes, seconds = divmod(int(round(eta_s)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def format_event(event: dict, total_steps: int) -> str:
    """One event as one line: `step 12/40  loss 5.4321  3,512 tok/s  ETA 0:07`, an evaluation's
    `eval at step 20/40  val loss 5.1234`, or its phase."""
    if isinstance(event.get("eval"), dict):
        return f"eval at step {event['eval'].get('step')}/{total_steps}  val loss {event['eval'].get('loss', 0.0):.4f}"
    if event.get("step") is None:
        return str(event.get("message") or event.get("phase") or "")
    parts = [f"step {event['step']}/{total_steps}"]
    if event.get("loss") is not None:
        parts.append(f"loss {event['loss']:.4f}")
    if event.get("tokens_per_s") is not None:
        parts.append(f"{event['tokens_per_s']:,.0f} tok/s")
    parts.append(f"ETA {format_eta(event.get('eta_s'))}")
    return "  ".join(parts)


class ProgressDisplay:
    """Callable sink for runtime events; `close()` ends the live line before the summary prints."""

    def __init__(self, total_steps: int, *, stream: TextIO | None = None, live: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total_steps = total_steps
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._line_open = False
        self._clock = clock
        self._last_plain_s: float | None = None
        self._every = max(1, total_steps // PLAIN_MILESTONES)

    def __call__(self, event: dict) -> None:
        line = format_event(event, self.total_steps)
        if not line:
            return
        if self.live:
            self.stream.write(_CLEAR_LINE + line)
            self._line_open = True
        elif self._plain_due(event.get("step")):
            self.stream.write(line + "\n")
        else:
            return
        self.stream.flush()

    def _plain_due(self, step: int | None) -> bool:
        """Off a terminal: phases always; a step at the ends, at a milestone, or after the interval."""
        if step is None:
            return True
        now = self._clock()
        due = (self._last_plain_s is None or step >= self.total_steps or step % self._every == 0
               or now - self._last_plain_s >= PLAIN_INTERVAL_S)
        if due:
            self._last_plain_s = now
        return due

    def close(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
