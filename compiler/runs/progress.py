"""Live progress for `megaspec apply --target local`: the runtime's step events, made readable.

On a terminal one line is rewritten in place (step/total, loss, tokens/s, ETA); anywhere else
(CI logs, pipes) each event becomes one plain line, so logs stay greppable and free of control
characters. The runtime calls the display from its launcher thread through `run_plan(on_event=)`.
"""

from __future__ import annotations

import sys
from typing import TextIO

_CLEAR_LINE = "\r\x1b[K"


def format_eta(eta_s: float | None) -> str:
    if eta_s is None or eta_s < 0:
        return "--:--"
    minutes, seconds = divmod(int(round(eta_s)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def format_event(event: dict, total_steps: int) -> str:
    """One event as one line: `step 12/40  loss 5.4321  3,512 tok/s  ETA 0:07`, or its phase."""
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

    def __init__(self, total_steps: int, *, stream: TextIO | None = None, live: bool | None = None):
        self.total_steps = total_steps
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._line_open = False

    def __call__(self, event: dict) -> None:
        line = format_event(event, self.total_steps)
        if not line:
            return
        if self.live:
            self.stream.write(_CLEAR_LINE + line)
            self._line_open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
