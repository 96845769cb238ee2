"""Beside `lower`: the plan and cost estimate of every run of a sweep template, without writing a file.

Each run is the template's checked data (bases and preset folded in) with the run's matrix values
set, validated and lowered like any spec; the estimate is runtime/cost.py's. A combination that
does not validate has no plan here: `megaspec sweep` and `apply` lint each run and say why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

from megaspec.runtime.cost import Estimate, estimate

from ..diagnostics import has_errors
from ..spec.expand import SweepRun, _set_path
from ..spec.validate import build_spec
from .lower import lower

if TYPE_CHECKING:
    from megaspec.runtime.plan import Plan

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


def totals(estimates: list[RunEstimate]) -> tuple[float | None, float | None]:
    """(estimated total, worst-case total) in USD; None when any run has no number (local runs: 0)."""
    def total(attr: str) -> float | None:
        values = [_usd(e, attr) for e in estimates]
        return None if any(v is None for v in values) else round(sum(v for v in values if v is not None), 2)
    return total("usd"), total("worst_case_usd")


def _usd(e: RunEstimate, attr: str) -> float | None:
    if e.plan is not None and e.plan.target == "local":
        return 0.0
    return None if e.estimate is None else getattr(e.estimate, attr)
