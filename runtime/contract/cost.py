"""Cost, in one place: the estimate before launch and the cost of what ran, at dated Modal list prices.

Pure Python, no torch. The compiler imports it (`lower` prices a plan's containers, `megaspec plan`
and `sweep --dry-run` show the estimate) and the runtime sets both numbers in the receipt, so the
estimate a user saw and the cost of the attempt come from one table with one date (the GPU rows of
`gpus.py`, the CPU and memory prices here).

Estimate: training FLOPs / (GPUs x dense BF16 peak x an assumed MFU) + a cold-start allowance
(image pull, and compile when the cache is cold), at the plan's container price (GPUs, CPU and
memory). The worst case is every attempt running to its timeout. Cost of an attempt: the observed
GPUs x the attempt's wall time (as the launcher saw it, container start not included) x the
observed GPU's list price. Local runs, rehearsals included, are not billed: they cost 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .clock import seconds_between
from .gpus import GPUS, PRICES_AS_OF, device_gpu_type

if TYPE_CHECKING:
    from .plan import Plan
    from .receipt import Cost, Hardware

# Modal list prices of the rest of a container, as of PRICES_AS_OF (GPU prices: `gpus.GPUS`).
CPU_USD_PER_CORE_HOUR = 0.04716
MEM_USD_PER_GIB_HOUR = 0.007992

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
    """Seconds of training at the assumed MFU; None without a known GPU peak or FLOPs count."""
    gpu = GPUS.get(plan.resources.gpu_type or "")
    if gpu is None or plan.model.flops_per_token is None:  # the user's own model is counted when it runs
        return None
    t = plan.train
    flops = t.steps * t.tokens_per_step * plan.model.flops_per_token
    return flops / (plan.distributed.world_size * gpu.bf16_peak_flops * ASSUMED_MFU)


def estimate(plan: Plan) -> Estimate:
    """What one attempt of `plan` should cost; no numbers for local runs or unpriced GPUs."""
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
                     f"worst case: {attempts} attempt(s) x {plan.resources.timeout_s // 60} min timeout",
                     *(("no duration: your model's FLOPs are counted when it runs",)
                       if plan.model.flops_per_token is None else ())),
    )


def _seconds(start: str, end: str | None) -> float:
    return max(seconds_between(start, end), 0.0) if end else 0.0


def of_attempt(plan: Plan, hardware: Hardware, started_at: str, finished_at: str | None) -> Cost:
    """The receipt's cost: observed GPU-seconds x the observed GPU's list price, beside the estimate."""
    from .receipt import Cost

    gpus = [d for d in hardware.observed_devices if d != "cpu"]
    gpu_type = device_gpu_type(gpus[0]) if gpus else None
    gpu_seconds = round(len(gpus) * plan.distributed.nodes * _seconds(started_at, finished_at), 3)
    price = GPUS[gpu_type].usd_per_hour if gpu_type else None
    if plan.target == "local" or not gpus:
        usd: float | None = 0.0
    else:
        usd = None if price is None else round(gpu_seconds * price / 3600, 4)
    est = estimate(plan)
    local = plan.target == "local"
    return Cost(prices_as_of=PRICES_AS_OF, gpu_type=gpu_type, usd_per_gpu_hour=price, gpu_seconds=gpu_seconds,
                usd=usd, est_usd=0.0 if local else est.usd, est_duration_s=est.duration_s,
                est_worst_case_usd=0.0 if local else est.worst_case_usd)
