"""`megaspec report`'s table: one row per run, grouped by comparison class, the best run marked.

Rows come from the run directories under a sweep (in the sweep's order) or a runs directory: the
swept values as columns (the sweep's matrix keys, or for a plain runs directory the plan settings
on which the runs differ), the metrics of `records.METRICS`, and the state. A run without a receipt
(planned, running, failed before its receipt) keeps its row, without numbers. The best run of each
class is picked by the objective: the sweep's `objective`, else the lane's default. A run done again
in its folder (a resumed sweep) shows its current attempt; the table says where the earlier ones are.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from megaspec.runtime.contract.rundir import ATTEMPTS_DIR, MANIFEST_FILE, RECEIPT_FILE, archived_attempts

from .compare_view import setting_differences
from ..safe_text import clipped
from .comparison import class_label, comparison_class
from .manifest import TERMINAL_STATES, BackendError, read_manifest
from .receipt_view import divergence_text
from .records import METRICS, RunRecord, load_run, metric_heading, metric_text, metric_values

# lane -> (metric, goal): what "best" means when the sweep does not say.
DEFAULT_OBJECTIVES = {"train": ("final_loss", "min"), "bench": ("busbw_gbps", "max")}
METRIC_LABELS = {key: label for key, label, _ in METRICS}
METRIC_HEADINGS = {key: metric_heading(key) for key, _, _ in METRICS}  # with units, as table columns and plot axes name them


@dataclass
class Row:
    name: str
    run_id: str
    state: str
    values: dict[str, object]
    metrics: dict[str, float | None]
    record: RunRecord | None
    class_label: str = "no receipt"
    best: bool = False
    problem: str | None = None  # why a run that has ended has no numbers here
    attempt: int = 1  # which attempt in its run folder this row is (the earlier ones are in attempts/)


@dataclass
class Report:
    keys: list[str]  # swept parameters, the table's first columns
    groups: dict[str, list[Row]]  # comparison class label -> rows, in run order
    objective: tuple[str, str] | None  # (metric, goal) from the sweep; None: each lane's default
    notes: list[str] = field(default_factory=list)


def _row(run_dir: Path, values: dict[str, object] | None, name: str | None = None) -> Row:
    """One run's row; `name` (the sweep's name for the run) stands in for the receipt's while it has none."""
    try:
        manifest, problem = read_manifest(run_dir), None
    except (ValueError, OSError) as e:
        manifest, problem = None, f"cannot read {MANIFEST_FILE}: {str(e).splitlines()[0]}"
    state = manifest.state if manifest is not None else "unreadable"
    try:
        record = load_run(run_dir)
    except BackendError as e:  # no receipt yet, or an unreadable one: the row stays, without numbers
        unreadable = manifest is None or (run_dir / RECEIPT_FILE).is_file()
        if manifest is not None and unreadable:
            problem = str(e)
        elif manifest is not None and state in TERMINAL_STATES:  # ended without a receipt: say why
            problem = manifest.error.summary() if manifest.error else str(e)
        return Row(clipped(name or run_dir.name), clipped(run_dir.name), state, _shown(values), {k: None for k, _, _ in METRICS},
                   None, "unreadable" if unreadable else "no receipt", problem=problem and clipped(problem),
                   attempt=archived_attempts(run_dir) + 1)
    problem = problem or divergence_text(record.receipt)
    return Row(clipped(record.name), clipped(record.receipt.run_id), state, _shown(values), metric_values(record), record,
               clipped(class_label(comparison_class(record))), problem=problem and clipped(problem),
               attempt=archived_attempts(run_dir) + 1)


def _shown(values: dict[str, object] | None) -> dict[str, object]:
    """A sweep's values as the table shows them: numbers as they are, text clipped and escaped."""
    return {clipped(k): v if isinstance(v, int | float) else clipped(v) for k, v in (values or {}).items()}


def build_report(root: Path) -> Report:
    from .records import run_dirs
    from .sweep_manifest import is_sweep_dir, refresh

    objective = None
    if is_sweep_dir(root):
        sweep = refresh(root)
        rows = [_row(root / r.run_dir, r.values, r.name) for r in sweep.runs if (root / r.run_dir).is_dir()]
        keys = [clipped(k) for k in list(sweep.matrix) or dict.fromkeys(k for r in sweep.runs for k in r.values)]
        if sweep.objective:
            objective = (sweep.objective["metric"], sweep.objective["goal"])
    else:
        rows = [_row(d, None) for d in run_dirs(root)]
        records = [r.record for r in rows if r.record is not None]
        differing = dict(setting_differences(records)) if len(records) > 1 else {}
        keys = list(differing)
        for i, row in enumerate(r for r in rows if r.record is not None):  # records' order
            row.values = _shown({k: differing[k][i] for k in keys})
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.class_label, []).append(row)
    report = Report(keys, groups, objective)
    for rows_of_class in groups.values():
        _mark_best(rows_of_class, objective)
    return report


def objective_of(rows: list[Row], objective: tuple[str, str] | None) -> tuple[str, str] | None:
    if objective is not None:
        return objective
    lanes = {r.record.receipt.lane for r in rows if r.record is not None}
    return DEFAULT_OBJECTIVES.get(lanes.pop()) if len(lanes) == 1 else None


def _mark_best(rows: list[Row], objective: tuple[str, str] | None) -> None:
    """Best by the objective among the ok runs (never a diverged one); on the validate lane, every passed verdict."""
    done = [r for r in rows if r.record is not None and r.state == "ok"]
    if done and done[0].record.receipt.lane == "validate" and objective is None:
        for r in done:
            r.best = bool(r.record.receipt.verdict and r.record.receipt.verdict.passed)
        return
    chosen = objective_of(rows, objective)
    scored = [r for r in done if chosen and r.metrics.get(chosen[0]) is not None]
    if chosen and scored:
        pick = min if chosen[1] == "min" else max
        pick(scored, key=lambda r: r.metrics[chosen[0]]).best = True


def shown_metrics(report: Report) -> list[str]:
    rows = [r for rs in report.groups.values() for r in rs]
    return [k for k, _, _ in METRICS if any(r.metrics.get(k) is not None for r in rows)]


def _cells(row: Row, keys: list[str], metrics: list[str]) -> list[str]:
    return (["*" if row.best else "", row.name, *(str(row.values.get(k, "-")) for k in keys), row.state,
             *(metric_text(m, row.metrics.get(m)) for m in metrics)])


def _objective_text(rows: list[Row], report: Report) -> str:
    chosen = objective_of(rows, report.objective)
    if chosen is None:
        return "passed verdicts" if any(r.record and r.record.receipt.lane == "validate" for r in rows) else "none"
    return f"{'lowest' if chosen[1] == 'min' else 'highest'} {METRIC_LABELS.get(chosen[0], chosen[0])}"


def replicate_lines(rows: list[Row], report: Report) -> list[str]:
    """`train.lr=0.001: final loss 5.5213 ± 0.0021 (n=3), tokens/s 3,282 ± 40 (n=3)` for each group of
    replicates (runs that differ only in `train.seed`) with two runs or more; [] when there are none."""
    from .replicates import SEED_KEY, group, spread

    if SEED_KEY not in report.keys:
        return []
    chosen = objective_of(rows, report.objective)
    shown = [m for m in dict.fromkeys([chosen[0] if chosen else "final_loss", "tokens_per_s"])]
    done = [r for r in rows if r.record is not None and r.state == "ok"]
    out = []
    for members in group(done, report.keys).values():
        if len(members) < 2:
            continue
        where = ", ".join(f"{k}={members[0].values.get(k, '-')}" for k in report.keys if k != SEED_KEY) or "all"
        parts = [f"{METRIC_HEADINGS[m]} {spread(vals).text('{:,.0f}' if m == 'tokens_per_s' else '{:.4f}')}"
                 for m in shown if len(vals := [r.metrics[m] for r in members if r.metrics.get(m) is not None]) > 1]
        if parts:
            out.append(f"{where}: {', '.join(parts)}")
    return out


def attempt_lines(rows: list[Row]) -> list[str]:
    """`NAME: attempt 2 shown; the earlier ones in attempts/ of its run folder`, for each run done again."""
    return [f"{r.name}: attempt {r.attempt} shown; the earlier ones in {ATTEMPTS_DIR}/ of its run folder"
            for r in rows if r.attempt > 1]


def format_text(report: Report) -> str:
    metrics = shown_metrics(report)
    head = ["", "run", *report.keys, "state", *(METRIC_HEADINGS[m] for m in metrics)]
    out = []
    for label, rows in report.groups.items():
        table = [head, *(_cells(r, report.keys, metrics) for r in rows)]
        widths = [max(len(t[i]) for t in table) for i in range(len(head))]
        out.append(f"class: {label} ({len(rows)} run(s); * best: {_objective_text(rows, report)})")
        out += ["  " + "  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip() for t in table]
        out += [f"  {r.name}: {r.problem}" for r in rows if r.problem]
        out += [f"  {line}" for line in attempt_lines(rows)]
        if replicates := replicate_lines(rows, report):
            out += ["  replicates (runs that differ only in train.seed), mean ± std (n):",
                    *(f"    {line}" for line in replicates)]
        out.append("")
    return "\n".join(out)


def format_markdown(report: Report) -> str:
    metrics = shown_metrics(report)
    head = ["best", "run", *report.keys, "state", *(METRIC_HEADINGS[m] for m in metrics)]
    out = ["# megaspec report", ""]
    for label, rows in report.groups.items():
        out += [f"## {label}", "", f"Best: {_objective_text(rows, report)}.", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r, report.keys, metrics)) + " |"
                for r in rows]
        if attempts := attempt_lines(rows):
            out += ["", *(f"- {line}" for line in attempts)]
        if replicates := replicate_lines(rows, report):
            out += ["", "Replicates (runs that differ only in `train.seed`), mean ± std (n):", "",
                    *(f"- {line}" for line in replicates)]
        out.append("")
    return "\n".join(out)


def format_csv(report: Report) -> str:
    """Machine-readable: raw numbers (no units, no rounding), one row per run, the class as a column."""
    metrics = [k for k, _, _ in METRICS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["class", "run", "run_id", "state", "best", *report.keys, *metrics, "attempt"])
    for label, rows in report.groups.items():
        for r in rows:
            writer.writerow([label, r.name, r.run_id, r.state, int(r.best), *(r.values.get(k, "") for k in report.keys),
                             *("" if r.metrics.get(m) is None else r.metrics[m] for m in metrics), r.attempt])
    return buf.getvalue()
