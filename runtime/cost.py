"""Cost, in one place: the dated Modal list prices, the estimate before launch, the cost of what ran.

Pure Python, no torch. The compiler imports it (`lower` prices a plan's containers, `megaspec plan`
and `sweep --dry-run` show the estimate) and the runtime sets both numbers in the receipt, so the
estimate a user saw and the cost of the attempt come from one table with one date.

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

if TYPE_CHECKING:
    from .plan import Plan
    from .receipt import Cost, Hardware

# USD per GPU-hour, Modal list prices transcribed 2026-05-25 (reference/modal-api.md §8).
PRICES_AS_OF = "2026-05-25"
GPU_USD_PER_HOUR: dict[str, float] = {
    "B200": 6.2496, "B200+": 6.2496, "H200": 4.5396, "H100": 3.9492, "RTX-PRO-6000": 3.0312,
    "A100-80GB": 2.4984, "A100": 2.0988, "A100-40GB": 2.0988, "L40S": 1.9512, "A10": 1.1016,
    "L4": 0.7992, "T4": 0.5904,
}
CPU_USD_PER_CORE_HOUR = 0.04716
MEM_USD_PER_GIB_HOUR = 0.007992

# Dense BF16 peak FLOP/s per GPU (reference/runtime.md §2.2), for the estimate before a run.
BF16_PEAK_FLOPS: dict[str, float] = {
    "H100": 989e12, "H200": 989e12, "B200": 2.25e15, "B200+": 2.25e15, "B300": 2.25e15,
    "A100": 312e12, "A100-40GB": 312e12, "A100-80GB": 312e12, "L40S": 362e12, "RTX-PRO-6000": 503e12,
    "A10": 125e12, "L4": 121e12, "T4": 65e12,
}

ASSUMED_MFU = 0.35
STARTUP_S = 180  # image pull, container start, process-group init
COLD_COMPILE_STARTUP_S = 600  # the same plus a cold torch.compile of every block

# CUDA device-name fragments -> Modal GPU type, most specific first ("H200" before "H100").
_DEVICE_TYPES = (("GB200", "B200"), ("B300", "B300"), ("B200", "B200"), ("H200", "H200"), ("H100", "H100"),
                 ("A100-SXM4-80GB", "A100-80GB"), ("A100 80GB", "A100-80GB"), ("A100", "A100-40GB"),
                 ("L40S", "L40S"), ("A10G", "A10"), ("A10", "A10"), ("L4", "L4"), ("T4", "T4"),
                 ("RTX PRO 6000", "RTX-PRO-6000"))


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
                     f"worst case: {attempts} attempt(s) x {plan.resources.timeout_s // 60} min timeout"),
    )


def modal_gpu_type(device_name: str) -> str | None:
    """'NVIDIA H100 80GB HBM3' -> 'H100': the price table's key for a device torch reported."""
    upper = device_name.upper()
    return next((modal for fragment, modal in _DEVICE_TYPES if fragment in upper), None)


def _seconds(start: str, end: str | None) -> float:
    return max(seconds_between(start, end), 0.0) if end else 0.0


def of_attempt(plan: Plan, hardware: Hardware, started_at: str, finished_at: str | None) -> Cost:
    """The receipt's cost: observed GPU-seconds x the observed GPU's list price, beside the estimate."""
    from .receipt import Cost

    gpus = [d for d in hardware.observed_devices if d != "cpu"]
    gpu_type = modal_gpu_type(gpus[0]) if gpus else None
    gpu_seconds = round(len(gpus) * plan.distributed.nodes * _seconds(started_at, finished_at), 3)
    price = GPU_USD_PER_HOUR.get(gpu_type or "")
    if plan.target == "local" or not gpus:
        usd: float | None = 0.0
    else:
        usd = None if price is None else round(gpu_seconds * price / 3600, 4)
    est = estimate(plan)
    local = plan.target == "local"
    return Cost(prices_as_of=PRICES_AS_OF, gpu_type=gpu_type, usd_per_gpu_hour=price, gpu_seconds=gpu_seconds,
                usd=usd, est_usd=0.0 if local else est.usd, est_duration_s=est.duration_s,
                est_worst_case_usd=0.0 if local else est.worst_case_usd)
