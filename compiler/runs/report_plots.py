"""`megaspec report`'s PNG plots, with matplotlib's Agg backend (no display needed), one class at a time.

- `loss.png`: the loss curve of every run on one chart, from each run's `progress.jsonl`, and beside it
  (dashed, same colour) its validation loss at each evaluation when the run has `train.eval`.
- `tokens_per_s.png`: tokens/s per run, one bar each, the best run's bar outlined.
- `<metric>_vs_<param>.png`: the objective metric against each swept parameter, one line per
  combination of the other swept values.
With several comparison classes each file name gets the class number (`loss-2.png`). matplotlib is
the optional extra `megaspec[plots]`: `plots_available()` says whether it is here.
"""

from __future__ import annotations

import io
import json
import math
import re
import statistics
from pathlib import Path

from .records import loss_curve, val_curve
from .report_table import METRIC_LABELS, Report, Row, objective_of

DPI = 110
MAX_LEGEND = 12  # more runs than this: no per-run legend entries
MAX_LABELLED_BARS = 30


def plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """Every plot of every class; the files written."""
    from megaspec.runtime.contract.files import write_bytes_atomic

    plt = _pyplot()
    written = []
    numbered = len(report.groups) > 1
    for index, (label, rows) in enumerate(report.groups.items(), 1):
        suffix = f"-{index}" if numbered else ""
        figures = {f"loss{suffix}.png": _loss(plt, label, rows), f"tokens_per_s{suffix}.png": _throughput(plt, label, rows)}
        chosen = objective_of(rows, report.objective)
        for key in report.keys if chosen else []:
            figures[f"{chosen[0]}_vs_{_slug(key)}{suffix}.png"] = _versus(plt, label, rows, key, report.keys, chosen[0])
        for name, fig in figures.items():
            if fig is None:
                continue
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=DPI)
            plt.close(fig)
            written.append(write_bytes_atomic(out_dir / name, buf.getvalue()))
    return written


def _short(row: Row, rows: list[Row]) -> str:
    """The run's name less what every run's name starts with (the sweep's name)."""
    prefix = _common_prefix([r.name for r in rows]) if len(rows) > 1 else ""
    return row.name[len(prefix):] or row.name


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    i = 0
    while i < min(len(first), len(last)) and first[i] == last[i]:
        i += 1
    cut = first[:i]
    return cut[:cut.rfind("-") + 1] if "-" in cut else ""


def _loss(plt, label: str, rows: list[Row]):
    """Every run's curve; past MAX_LEGEND runs the others are one thin collection and only the best is named."""
    from matplotlib.collections import LineCollection

    curves = [(r, loss_curve(r.record)) for r in rows if r.record is not None]
    curves = [(r, c) for r, c in curves if c]
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if len(curves) > MAX_LEGEND:
        ax.add_collection(LineCollection([c for r, c in curves if not r.best], colors="#4C72B0", linewidths=0.6,
                                         alpha=0.25, label=f"{len(curves)} runs"))
        ax.autoscale_view()
        curves = [(r, c) for r, c in curves if r.best]
    for row, curve in curves:
        steps, losses = zip(*curve, strict=True)
        [line] = ax.plot(steps, losses, marker="." if len(steps) < 30 else None, linewidth=2.4 if row.best else 1.4,
                         label=_short(row, rows) + ("  (best)" if row.best else ""))
        _val_line(ax, row, line.get_color(), line.get_label())
    ax.set(xlabel="step", ylabel="loss", title=f"Loss per step\n{label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _val_line(ax, row: Row, color: str, label: str) -> None:
    """The run's validation losses, dashed in its training curve's colour."""
    if val := val_curve(row.record):
        steps, losses = zip(*val, strict=True)
        ax.plot(steps, losses, linestyle="--", marker="o", markersize=3, color=color, linewidth=1.2,
                label=f"{label} (validation)")


def _throughput(plt, label: str, rows: list[Row]):
    """One bar per run, the best outlined; past MAX_LABELLED_BARS one filled outline instead of bars."""
    bars = [r for r in rows if r.metrics.get("tokens_per_s") is not None]
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(min(max(6, 0.9 * len(bars) + 2), 14), 4.8))
    heights = [r.metrics["tokens_per_s"] for r in bars]
    best = [i for i, r in enumerate(bars) if r.best]
    if len(bars) <= MAX_LABELLED_BARS:
        drawn = ax.bar(range(len(bars)), heights, color="#4C72B0")
        for i in best:
            drawn[i].set_edgecolor("black")
            drawn[i].set_linewidth(2)
        ax.set_xticks(range(len(bars)), [_short(r, rows) for r in bars], rotation=30, ha="right", fontsize=8)
        ax.bar_label(drawn, labels=[f"{h:,.0f}" for h in heights], fontsize=8)
    else:
        ax.stairs(heights, [i - 0.5 for i in range(len(bars) + 1)], fill=True, color="#4C72B0")
        ax.bar(best, [heights[i] for i in best], width=1, fill=False, edgecolor="black", linewidth=2, label="best")
        ax.set_xlabel(f"{len(bars)} runs in sweep order")
        if best:
            ax.legend(fontsize=8)
    ax.set(ylabel="tokens/s", title=f"Throughput per run\n{label}")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def axis_value(value: object) -> float | str:
    """A setting as a point on an axis: a finite number as itself, anything else (a list such as
    `bench.ops`, a map, None, a bool, a string, an infinity) as its text, so every value is one
    hashable, ordered category."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _versus(plt, label: str, rows: list[Row], key: str, keys: list[str], metric: str):
    points = [r for r in rows if r.metrics.get(metric) is not None and key in r.values]
    if not points:
        return None
    others = [k for k in keys if k != key]
    series: dict[str, list[Row]] = {}
    for r in points:
        series.setdefault(", ".join(f"{k}={r.values.get(k)}" for k in others) or metric, []).append(r)
    at = {id(r): axis_value(r.values[key]) for r in points}
    xs = sorted(set(at.values()), key=lambda v: (isinstance(v, str), v))
    position = {v: i for i, v in enumerate(xs)}  # one lookup per point, not a scan of xs
    numeric = all(isinstance(v, float) for v in xs)
    if len(series) > MAX_LEGEND:  # too many lines to tell apart: every point, and the mean at each value
        series = {f"mean of {len(points)} runs": points}
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for name, members in series.items():
        members = sorted(members, key=lambda r: position[at[id(r)]])
        x = [at[id(r)] if numeric else position[at[id(r)]] for r in members]
        y = [r.metrics[metric] for r in members]
        if len(set(x)) == len(x):
            ax.plot(x, y, marker="o", label=name)
            continue
        ax.scatter(x, y, s=8, alpha=0.4)
        means = {v: statistics.fmean(yy for xx, yy in zip(x, y, strict=True) if xx == v) for v in dict.fromkeys(x)}
        ax.plot(list(means), list(means.values()), marker="o", color="black", label=name)
    if numeric and len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 20:
        ax.set_xscale("log")
    if numeric and len(xs) <= 8:
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.minorticks_off()
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set(xlabel=key, ylabel=METRIC_LABELS.get(metric, metric), title=f"{METRIC_LABELS.get(metric, metric)} vs {key}\n{label}")
    ax.grid(alpha=0.3)
    if len(series) > 1 or "mean" in next(iter(series)):
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
