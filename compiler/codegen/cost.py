"""Beside `lower`: what a Plan will cost before it runs, from the dated price table in `gpu.py`.

Duration = training FLOPs / (GPUs x dense BF16 peak x an assumed MFU) + a cold-start allowance
(image pull, and compile when the cache is cold). The worst case is every attempt running to its
timeout. Local runs and rehearsals cost nothing; GPUs without a listed price get no estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from megaspec.runtime.plan import Plan

from ..spec.gpu import BF16_PEAK_FLOPS, PRICES_AS_OF

ASSUMED_MFU = 0.35
STARTUP_S = 180  # image pull, container start, process-group init
COLD_COMPILE_STARTUP_S = 600  # the same plus a cold torch.compile of every block


@dataclass(frozen=True, slots=True)
class Estimate:
    usd_per_hour: float | None  # all containers of one attempt
    duration_s: int | None  # one successful attempt
    usd: float | None  # one successful attempt
    worst_case_usd: float | None  # every attempt hits its timeout
    prices_as_of: str
    assumptions: tuple[str, ...]


def startup_s(plan: Plan) -> int:
    cold = plan.cache.policy == "cold" or plan.cache.dir is None
    return COLD_COMPILE_STARTUP_S if plan.train.compile and cold else STARTUP_S


def compute_s(plan: Plan) -> float | None:
    """Seconds of training at the assumed MFU; None without a known GPU peak."""
    peak = BF16_PEAK_FLOPS.get(plan.resources.gpu_type or "")
    if peak is None:
        return None
    t = plan.train
    flops = t.steps * t.global_batch * t.seq_len * plan.model.flops_per_token
    return flops / (plan.distributed.world_size * peak * ASSUMED_MFU)


def estimate(plan: Plan) -> Estimate:
    rate = plan.resources.price_usd_per_hour
    if plan.target == "local" or rate is None:
        why = "runs locally: no cost" if plan.target == "local" else "no list price for this GPU"
        return Estimate(None, None, None, None, PRICES_AS_OF, (why,))
    compute = compute_s(plan)
    duration = None if compute is None else round(compute + startup_s(plan))
    attempts = plan.resources.retries + 1
    return Estimate(
        usd_per_hour=rate, duration_s=duration,
        usd=None if duration is None else round(rate * duration / 3600, 2),
        worst_case_usd=round(rate * plan.resources.timeout_s * attempts / 3600, 2),
        prices_as_of=PRICES_AS_OF,
        assumptions=(f"MFU {ASSUMED_MFU:.0%} of dense BF16 peak", f"{startup_s(plan) // 60} min start-up",
                     f"worst case: {attempts} attempt(s) x {plan.resources.timeout_s // 60} min timeout"),
    )
