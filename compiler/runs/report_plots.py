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
from pathlib import Path

from .records import loss_curve, val_curve
from .report_table import METRIC_HEADINGS, Report, Row, objective_of

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


def write_plots(report: Report, out_dir: Path, x: str = "step") -> list[Path]:
    """Every plot of every class; the files written. `x`: the loss curves' axis, `step` or `tokens` seen."""
    from .replicates import SEED_KEY

    from megaspec.runtime.contract.files import write_bytes_atomic

    plt = _pyplot()
    written = []
    numbered = len(report.groups) > 1
    for index, (label, rows) in enumerate(report.groups.items(), 1):
        suffix = f"-{index}" if numbered else ""
        figures = {f"loss{suffix}.png": _loss(plt, label, rows, x),
                   f"tokens_per_s{suffix}.png": _throughput(plt, label, rows)}
        chosen = objective_of(rows, report.objective)
        for key in [k for k in report.keys if k != SEED_KEY] if chosen else []:  # the seed is never an axis
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


def _loss(plt, label: str, rows: list[Row], x: str = "step"):
    """Every run's curve against its steps or the tokens it had seen; past MAX_LEGEND runs the others
    are one thin collection and only the best is named. The legend sits outside the axes."""
    from matplotlib.collections import LineCollection

    scale = (lambda r: r.record.plan.train.tokens_per_step) if x == "tokens" else (lambda r: 1)
    curves = [(r, [(s * scale(r), v) for s, v in loss_curve(r.record)]) for r in rows if r.record is not None]
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
        _val_line(ax, row, line.get_color(), line.get_label(), scale(row))
    xlabel = "tokens seen" if x == "tokens" else "step"
    ax.set(xlabel=xlabel, ylabel="loss (cross-entropy, nats)", title=f"Loss per {'token' if x == 'tokens' else 'step'}\n{label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.tight_layout()
    return fig


def _val_line(ax, row: Row, color: str, label: str, scale: int = 1) -> None:
    """The run's validation losses, dashed in its training curve's colour (`scale`: tokens per step)."""
    if val := val_curve(row.record):
        steps, losses = zip(*val, strict=True)
        ax.plot([s * scale for s in steps], losses, linestyle="--", marker="o", markersize=3, color=color, linewidth=1.2,
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
    ax.set(ylabel=METRIC_HEADINGS["tokens_per_s"] + " (all ranks)", title=f"Throughput per run\n{label}")
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
    """The metric against one swept setting, one series per combination of the others. The seed never
    splits a series: replicates are one point (their mean) with a std error bar, each run faint beside
    it. Log x when a numeric setting spans 5x or more; the best run starred; the legend outside."""
    from .replicates import SEED_KEY, spread

    points = [r for r in rows if r.metrics.get(metric) is not None and key in r.values]
    if not points:
        return None
    others = [k for k in keys if k not in (key, SEED_KEY)]
    series: dict[str, list[Row]] = {}
    for r in points:
        series.setdefault(", ".join(f"{k}={r.values.get(k)}" for k in others) or "runs", []).append(r)
    at = {id(r): axis_value(r.values[key]) for r in points}
    xs = sorted(set(at.values()), key=lambda v: (isinstance(v, str), v))
    position = {v: i for i, v in enumerate(xs)}  # one lookup per point, not a scan of xs
    numeric = all(isinstance(v, float) for v in xs)
    if len(series) > MAX_LEGEND:  # too many lines to tell apart: every point, and the mean at each value
        series = {"mean per value": points}
    place = (lambda v: v) if numeric else position.__getitem__
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for name, members in series.items():
        by_x: dict[float | str, list[float]] = {}
        for r in members:
            by_x.setdefault(at[id(r)], []).append(r.metrics[metric])
        xv = sorted(by_x, key=position.__getitem__)
        spreads = [spread(by_x[v]) for v in xv]
        if max(s.n for s in spreads) == 1:
            ax.plot([place(v) for v in xv], [s.mean for s in spreads], marker="o", label=name)
            continue
        counts = sorted({s.n for s in spreads})
        n_text = f"n={counts[0]}" if len(counts) == 1 else f"n={counts[0]}-{counts[-1]}"
        drawn = ax.errorbar([place(v) for v in xv], [s.mean for s in spreads], yerr=[s.std for s in spreads],
                            marker="o", capsize=4, label=f"{name}: mean ± std ({n_text})")
        ax.scatter([place(v) for v in xv for _ in by_x[v]], [y for v in xv for y in by_x[v]], s=10, alpha=0.35,
                   color=drawn[0].get_color())
    for r in (r for r in points if r.best):
        ax.scatter([place(at[id(r)])], [r.metrics[metric]], marker="*", s=220, color="gold", edgecolors="black",
                   zorder=5, label=f"best: {_short(r, rows)}")
    if numeric and len(xs) > 1 and min(xs) > 0 and max(xs) / min(xs) >= 5:
        ax.set_xscale("log")
    if numeric and len(xs) <= 8:
        ax.set_xticks(xs, [f"{v:g}" for v in xs])
        ax.minorticks_off()
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    heading = METRIC_HEADINGS.get(metric, metric)
    ax.set(xlabel=key, ylabel=heading, title=f"{heading} vs {key}\n{label}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    fig.tight_layout()
    return fig
