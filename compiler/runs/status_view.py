"""`megaspec status` for people (a table with a header) and machines (`--json`)."""

from __future__ import annotations

from ..safe_text import clipped
from .manifest import Manifest
from .refresh import RunView

MAX_DETAIL = 600  # characters of the last column (an error's summary)
COLUMNS = ("RUN", "STATE", "BACKEND", "LANE", "LAUNCHED (UTC)", "DETAIL")


def format_table(views: list[RunView]) -> str:
    rows = [COLUMNS, *(_row(v) for v in views)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in rows]
    return "\n".join(lines)


def _row(view: RunView) -> tuple[str, ...]:
    """The cells of one run, each clipped (a manifest is read back: its strings could be anything)."""
    m = view.manifest
    if m is None:
        return (clipped(view.run_dir.name), "?", "-", "-", "-", clipped(view.problem or "", MAX_DETAIL))
    launched = m.transitions[0].at[:19].replace("T", " ")  # to the second, UTC
    state = m.state if view.problem is None else "unknown"  # its refresh failed: the stored state may be stale
    return (clipped(m.run_id), state, m.backend, m.lane, clipped(launched), clipped(view.problem or _detail(m), MAX_DETAIL))


def _detail(m: Manifest) -> str:
    """The one thing to know next: the error, where it runs, or how to follow it."""
    if m.error is not None:
        return m.error.summary()
    if m.state in ("ok", "diverged"):
        return f"receipt: {m.receipt}" if m.receipt else ""
    if m.state == "interrupted":
        return m.notes[-1] if m.notes else ""
    if m.state == "planned":
        return "queued: not launched yet"
    if m.modal is not None and m.modal.task_id:
        return f"container {m.modal.task_id}"
    if m.modal is not None and m.modal.function_call_id:
        return f"call {m.modal.function_call_id}, waiting for a container"
    if m.process is not None:
        return f"pid {m.process.pid} on {m.process.host}"
    return ""


def view_json(view: RunView) -> dict:
    """A run for machines: the manifest as stored (None when unreadable) and the refresh problem."""
    return {"run_dir": str(view.run_dir), "problem": view.problem,
            "manifest": view.manifest.model_dump(mode="json") if view.manifest else None}
