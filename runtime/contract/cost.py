"""Cost, in one place: the estimate before launch and the cost of what ran, at dated Modal list prices.

Pure Python, no torch. The compiler imports it (`lower` prices a plan's containers, `megaspec plan`
and `sweep --dry-run` show the estimate) and the runtime sets both numbers in the receipt, so the
estimate a user saw and the cost of the attempt come from one table with one date (the GPU rows of
`gpus.py`, the CPU and memory prices here).

One rate for both (`usd_per_hour`): a container's GPUs + CPU cores + memory at the list prices, per
node, times the nodes (Modal bills all three per second of container time: modal.com/pricing).
Estimate: training FLOPs / (GPUs x dense BF16 peak x an assumed MFU) + a cold-start allowance
(image pull, and compile when the cache is cold), at the plan's rate. The worst case is every
attempt running to its timeout. Cost of an attempt: the same rate, with the GPU Modal bills (an
upgraded request is billed at the requested type: `billed_gpu_type`) and the observed GPU count, x
the billed time: the attempt's wall time plus, where measured, the container's start-up before the
launcher (on Modal, from /proc). Local runs, rehearsals included, are not billed: they cost 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from .clock import seconds_between
from .gpus import GPUS, PRICES_AS_OF, device_gpu_type

if TYPE_CHECKING:
    from .plan import Plan
    from .receipt import Cost, Hardware

# Modal list prices of the rest of a container, as of PRICES_AS_OF (GPU prices: `gpus.GPUS`).
CPU_USD_PER_CORE_HOUR = 0.04716
MEM_USD_PER_GIB_HOUR = 0.007992

# Where the prices come from, and what Modal bills for an upgraded request (`megaspec explain MS303`
# and the receipt say it too).
PRICE_SOURCE = ("Modal's per-second list prices (modal.com/pricing) as transcribed by snapshots of 2026-05-07 "
                "(techbytes), 2026-05-25 (api-evangelist/modal-com) and 2026-06-27 (beam.cloud); an upgraded "
                "request (H100 served on an H200, A100 on an 80 GB A100, B200+ on a B300) is billed at the "
                "requested type (Modal docs, guide/gpu, 'Automatic upgrades')")
STALE_AFTER_DAYS = 90  # `megaspec plan` warns past this: Modal's prices may have changed
# A requested type -> the cards Modal may serve it with, billed as the request.
UPGRADES: dict[str, tuple[str, ...]] = {"H100": ("H200",), "A100": ("A100-40GB", "A100-80GB"),
                                        "B200+": ("B200", "B300")}

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


def usd_per_hour(gpu_type: str | None, gpus_per_node: int, cpu: float, memory_gib: float, nodes: int) -> float | None:
    """The one rate: `nodes` containers of `gpus_per_node` x `gpu_type` (None: no GPU), `cpu` cores and
    `memory_gib` each, per hour at the list prices; None for a GPU without a list price."""
    gpu_usd = 0.0
    if gpu_type is not None:
        price = GPUS[gpu_type].usd_per_hour if gpu_type in GPUS else None
        if price is None:
            return None
        gpu_usd = price * gpus_per_node
    return round((gpu_usd + cpu * CPU_USD_PER_CORE_HOUR + memory_gib * MEM_USD_PER_GIB_HOUR) * nodes, 4)


def billed_gpu_type(requested: list[str], observed: str | None) -> str | None:
    """The type Modal bills: the observed card when it was asked for, else the requested type it upgrades."""
    if observed is None or observed in requested:
        return observed
    return next((r for r in requested if observed in UPGRADES.get(r, ())), observed)


def prices_age_days(today: date | None = None) -> int:
    return ((today or date.today()) - date.fromisoformat(PRICES_AS_OF)).days


def container_startup_s(started_at: str, now: str) -> float | None:
    """Seconds the container ran before the launcher started (`started_at`), from when its first process
    started (/proc/1, Modal's container); None off Modal or where /proc does not say."""
    if "MODAL_TASK_ID" not in os.environ:
        return None
    try:
        start_ticks = int(Path("/proc/1/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    container_age_s = uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")
    return round(max(container_age_s - seconds_between(started_at, now), 0.0), 3)


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
    """The receipt's cost: `usd_per_hour` with the billed GPU type and the observed GPU count, over the
    billed time (wall time + measured container start-up), split into GPU, CPU, memory and start-up."""
    from .receipt import Cost

    gpus = [d for d in hardware.observed_devices if d != "cpu"]
    observed = device_gpu_type(gpus[0]) if gpus else None
    wall_s = _seconds(started_at, finished_at)
    startup = container_startup_s(started_at, finished_at) if finished_at and plan.target == "modal" else None
    billed_s = wall_s + (startup or 0.0)
    billed = billed_gpu_type([g.split(":")[0].rstrip("!") for g in plan.resources.modal_gpu], observed)
    est = estimate(plan)
    local = plan.target == "local"
    common = {"prices_as_of": PRICES_AS_OF, "price_source": PRICE_SOURCE, "gpu_type": observed,
              "billed_gpu_type": billed, "gpu_seconds": round(len(gpus) * plan.distributed.nodes * wall_s, 3),
              "billed_s": round(billed_s, 3), "startup_s": startup, "est_usd": 0.0 if local else est.usd,
              "est_duration_s": est.duration_s, "est_worst_case_usd": 0.0 if local else est.worst_case_usd}
    price = GPUS[billed].usd_per_hour if billed in GPUS else None
    if local or (plan.resources.gpu_count and not gpus):
        return Cost(**common, usd_per_gpu_hour=price, usd=0.0 if local else None)
    parts = None if gpus and billed is None else _parts(billed, len(gpus), plan, billed_s, startup or 0.0)
    if parts is None:  # a GPU megaspec cannot name or has no list price for
        return Cost(**common, usd_per_gpu_hour=None, usd=None)
    return Cost(**common, usd_per_gpu_hour=price, usd=round(sum(parts[:3]), 4), gpu_usd=parts[0], cpu_usd=parts[1],
                memory_usd=parts[2], startup_usd=parts[3])


def _parts(gpu_type: str | None, gpus_per_node: int, plan: Plan, billed_s: float, startup_s_: float
           ) -> tuple[float, float, float, float] | None:
    """(GPU, CPU, memory, start-up) USD of `billed_s` seconds (start-up is the part of the three spent
    before the launcher started); None for an unpriced GPU."""
    r, nodes = plan.resources, plan.distributed.nodes
    cpu, mem_gib = r.cpu or 0.0, (r.memory_mib or 0) / 1024
    rate = usd_per_hour(gpu_type, gpus_per_node, cpu, mem_gib, nodes)
    if rate is None:
        return None
    gpu_rate = usd_per_hour(gpu_type, gpus_per_node, 0.0, 0.0, nodes) or 0.0
    hours = billed_s / 3600
    return (round(gpu_rate * hours, 4), round(cpu * CPU_USD_PER_CORE_HOUR * nodes * hours, 4),
            round(mem_gib * MEM_USD_PER_GIB_HOUR * nodes * hours, 4), round(rate * startup_s_ / 3600, 4))
