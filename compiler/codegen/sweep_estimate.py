"""Beside `lower`: the plan and cost estimate of every run of a sweep template, without writing a file.

Each run is the template's checked data (bases and preset folded in) with the run's matrix values
set, validated and lowered like any spec; the estimate is runtime/contract/cost.py's. A combination that
does not validate has no plan here: `megaspec sweep` and `apply` lint each run and say why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from megaspec.runtime.contract.cost import Estimate, estimate

from ..diagnostics import has_errors
from ..spec.expand import SweepRun, _set_path
from ..spec.validate import build_spec
from .lower import lower

if TYPE_CHECKING:
    from megaspec.runtime.contract.plan import Plan

    from ..lint.check import Checked


@dataclass(frozen=True)
class RunEstimate:
    run: SweepRun
    plan: Plan | None  # None when the run's spec does not validate
    estimate: Estimate | None


def estimate_runs(checked: Checked, runs: list[SweepRun], target: str | None = None) -> list[RunEstimate]:
    base = {key: value for key, value in (checked.data or {}).items() if key != "sweep"}
    out = []
    for run in runs:
        data = copy.deepcopy(base)
        for key, value in run.values.items():
            _set_path(data, key, value)
        data["name"] = run.name
        spec, problems = build_spec(data, checked.smap)
        if spec is None or has_errors(problems):
            out.append(RunEstimate(run, None, None))
            continue
        plan = lower(spec, spec_path=checked.path, spec_sha256="", origins={}, target=target)
        out.append(RunEstimate(run, plan, estimate(plan)))
    return out


def usd_text(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes = round(seconds / 60)
    return f"~{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"~{minutes}m"


def preview_lines(runs: list[tuple[str, dict, Plan | None, Estimate | None]]) -> tuple[list[str], float | None, float | None]:
    """The table of a sweep's runs (`sweep --dry-run` and the `apply` preview), one `(name, swept values,
    plan, estimate)` each, with its totals line; and the (estimated, worst-case) totals in USD (None:
    some run has no price; local runs cost 0)."""
    from megaspec.runtime.contract.cost import PRICES_AS_OF

    rows = [(str(i), name, ", ".join(f"{k}={v}" for k, v in values.items()) or "-", _gpu(plan),
             "-" if plan is not None and plan.target == "local" else duration_text(est and est.duration_s),
             usd_text(_usd(plan, est, "usd")), usd_text(_usd(plan, est, "usd_per_hour")))
            for i, (name, values, plan, est) in enumerate(runs, 1)]
    head = ("#", "run", "swept values", "GPU", "est. time", "est. cost", "$/h")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    total, worst = (_total([_usd(plan, est, attr) for _, _, plan, est in runs]) for attr in ("usd", "worst_case_usd"))
    lines.append(f"  total {usd_text(total)}, worst case {usd_text(worst)} "
                 f"(every attempt to its timeout; Modal list prices as of {PRICES_AS_OF})")
    return lines, total, worst


def _gpu(plan: Plan | None) -> str:
    if plan is None:
        return "?"  # the run's spec does not validate
    return (plan.resources.modal_gpu or [f"CPU x{plan.distributed.world_size}"])[0]


def _usd(plan: Plan | None, est: Estimate | None, attr: str) -> float | None:
    if plan is not None and plan.target == "local":
        return 0.0
    return None if est is None else getattr(est, attr)


def _total(values: list[float | None]) -> float | None:
    return None if None in values else round(sum(v for v in values if v is not None), 2)
