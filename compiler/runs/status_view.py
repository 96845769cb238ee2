"""`megaspec status` for people (a table with a header and a count line) and machines (`--json`).

Each run shows when it was launched (its first move out of `planned`, never the planning) and, while
it runs, how far it got: step / planned steps, last loss, tokens/s, elapsed and ETA, from the last
step event of the progress.jsonl in its run folder. A local run writes that file there; a Modal run's
is copied there from its results Volume by each refresh (`refresh.py`, `backends/modal_volume.py`),
and when there is no copy to be had (nothing committed yet, no Volume, Modal out of reach) the row
shows what is known (the elapsed time) and DETAIL (`--json`: `progress_problem`) says why. The ETA
counts down from the time the event was written (its `at`), so a copy's age is the event's.
Runs are listed by launch time; queued ones last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from megaspec.runtime.contract.clock import seconds_between, utc_now

from ..safe_text import clipped
from .manifest import Manifest
from .progress import format_eta
from .refresh import RunView

MAX_DETAIL = 600  # characters of the last column (an error's summary)
COLUMNS = ("RUN", "STATE", "BACKEND", "LANE", "LAUNCHED (UTC)", "STEP", "LOSS", "TOK/S", "ELAPSED", "ETA",
           "DETAIL")
STATE_ORDER = ("running", "detached", "planned", "ok", "diverged", "interrupted", "error")


@dataclass(frozen=True)
class Progress:
    """How far a run got, as far as this machine knows (None: not known)."""

    launched_at: str | None  # the first transition out of `planned`
    step: int | None = None
    planned_steps: int | None = None
    loss: float | None = None
    tokens_per_s: float | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None


def launched_at(m: Manifest) -> str | None:
    return next((t.at for t in m.transitions if t.state != "planned"), None)


def progress_of(view: RunView, now: str) -> Progress:
    """A run's progress: the launch, the elapsed time (to now, or to its end), and while it runs the
    last step event of its progress.jsonl, the ETA counted down from that event's time."""
    m = view.manifest
    start = launched_at(m) if m is not None else None
    if m is None or start is None:
        return Progress(start)
    elapsed = max(seconds_between(start, m.completed_at or now), 0.0)
    if m.is_terminal:
        return Progress(start, elapsed_s=elapsed)
    from megaspec.runtime.contract.progress import last_step, written_before

    event = last_step(view.run_dir)
    if event is None or written_before(event, start):  # an earlier attempt's step is not this one's
        return Progress(start, elapsed_s=elapsed)
    eta = event.get("eta_s")
    age = _age_s(view.run_dir, event, now)
    return Progress(start, event["step"], _planned_steps(view.run_dir), event.get("loss"), event.get("tokens_per_s"),
                    elapsed, None if eta is None else max(eta - age, 0.0))


def _age_s(run_dir: Path, event: dict, now: str) -> float:
    """Seconds since the step `event` was written: its `at`, else (a file written before events had
    one) the time progress.jsonl was last written here."""
    from datetime import UTC, datetime

    from megaspec.runtime.contract.rundir import PROGRESS_FILE

    if "at" in event:
        return max(seconds_between(event["at"], now), 0.0)
    try:
        written = datetime.fromtimestamp((run_dir / PROGRESS_FILE).stat().st_mtime, UTC)
    except OSError:
        return 0.0
    return max(seconds_between(written.strftime("%Y-%m-%dT%H:%M:%SZ"), now), 0.0)


def _planned_steps(run_dir: Path) -> int | None:
    from megaspec.runtime.contract.plan import read_plan
    from megaspec.runtime.contract.rundir import PLAN_FILE

    try:
        return read_plan(run_dir / PLAN_FILE).train.steps
    except (OSError, ValueError):
        return None


def ordered(views: list[RunView]) -> list[RunView]:
    """By launch time, oldest first; runs not launched yet (queued) after them, unreadable ones first."""
    def key(v: RunView) -> tuple:
        if v.manifest is None:
            return (0, "", v.run_dir.name)
        start = launched_at(v.manifest)
        return (1, start, v.run_dir.name) if start else (2, v.manifest.transitions[0].at, v.run_dir.name)

    return sorted(views, key=key)


def count_line(views: list[RunView]) -> str:
    """`6 runs: 1 running, 2 planned, 3 ok`: how many runs are in each state."""
    counts: dict[str, int] = {}
    for v in views:
        state = v.manifest.state if v.manifest is not None else "unreadable"
        counts[state] = counts.get(state, 0) + 1
    order = {s: i for i, s in enumerate(STATE_ORDER)}
    shown = sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))
    return f"{len(views)} run(s): " + ", ".join(f"{n} {s}" for s, n in shown)


def format_table(views: list[RunView], now: str | None = None) -> str:
    now = now or utc_now()
    rows = [COLUMNS, *(_row(v, progress_of(v, now)) for v in views)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]).rstrip() for r in rows]
    return "\n".join([*lines, count_line(views)])


def _row(view: RunView, p: Progress) -> tuple[str, ...]:
    """The cells of one run, each clipped (a manifest is read back: its strings could be anything)."""
    m = view.manifest
    if m is None:
        return (clipped(view.run_dir.name), "?", "-", "-", "-", "-", "-", "-", "-", "-",
                clipped(view.problem or "", MAX_DETAIL))
    launched = p.launched_at[:19].replace("T", " ") if p.launched_at else "-"  # to the second, UTC
    state = m.state if view.problem is None else "unknown"  # its refresh failed: the stored state may be stale
    step = f"{p.step}/{p.planned_steps or '?'}" if p.step is not None else "-"
    return (clipped(m.run_id), state, m.backend, m.lane, clipped(launched), step,
            "-" if p.loss is None else f"{p.loss:.4f}", "-" if p.tokens_per_s is None else f"{p.tokens_per_s:,.0f}",
            "-" if p.elapsed_s is None else format_eta(p.elapsed_s), "-" if p.eta_s is None else format_eta(p.eta_s),
            clipped(view.problem or "; ".join(filter(None, (_with_attempt(_detail(m, view.run_dir), view.run_dir),
                                                            view.progress_problem))), MAX_DETAIL))


def _with_attempt(detail: str, run_dir: Path) -> str:
    """A run done again in its folder says which attempt this is and where the earlier ones are."""
    from megaspec.runtime.contract.rundir import ATTEMPTS_DIR, archived_attempts

    done = archived_attempts(run_dir)
    return f"{detail}  (attempt {done + 1}; earlier ones in {ATTEMPTS_DIR}/)".lstrip() if done else detail


def _detail(m: Manifest, run_dir: Path) -> str:
    """The one thing to know next: the error, where it runs or its receipt is, or how to follow it."""
    if m.error is not None:
        return m.error.summary()
    if m.state in ("ok", "diverged"):
        return f"receipt: {(run_dir / m.receipt).as_posix()}" if m.receipt else ""
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


def view_json(view: RunView, now: str | None = None) -> dict:
    """A run for machines: the manifest as stored (None when unreadable), the refresh problem, why a
    Modal run's progress could not be copied (`progress_problem`), the table's progress fields
    (`launched_at`, `step`, `planned_steps`, `loss`, `tokens_per_s`, `elapsed_s`, `eta_s`), and which
    attempt in its run folder this is (`attempt`: 2 or more for a run done again, the earlier ones in attempts/)."""
    from megaspec.runtime.contract.rundir import archived_attempts

    return {"run_dir": str(view.run_dir), "problem": view.problem, "progress_problem": view.progress_problem,
            **asdict(progress_of(view, now or utc_now())), "attempt": archived_attempts(view.run_dir) + 1,
            "manifest": view.manifest.model_dump(mode="json") if view.manifest else None}
