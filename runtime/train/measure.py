"""Measurement of the loop: step times, tokens/s, MFU, memory, first-forward and compile time.

Step 1 (compile, lazy init) and `train.warmup_steps` are excluded from every throughput number;
MFU uses the observed device's dense BF16 peak (torchtitan's formula; the peak from `gpus.GPUS`) and
is None where no honest peak exists (CPU, unknown devices).
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch

from ..contract.gpus import peak_flops


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mem_gib(device: torch.device) -> float:
    """CUDA max allocated, or this process's max RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**30 if sys.platform == "darwin" else rss / 2**20  # bytes on macOS, KiB on Linux


@dataclass
class StepClock:
    """Wall time of each optimizer step, end to end (data, logging, status writes included);
    steps <= `num_excluded` are left out of the summary."""

    num_excluded: int
    tokens_per_step: int  # global
    step_times_s: dict[int, float] = field(default_factory=dict)
    _last: float = 0.0

    def start(self) -> None:
        self._last = time.perf_counter()

    def tick(self, step: int) -> float:
        """Close `step`: the time since the previous tick (or `start`)."""
        now = time.perf_counter()
        self.step_times_s[step], self._last = now - self._last, now
        return self.step_times_s[step]

    def measured(self) -> list[float]:
        return [t for s, t in sorted(self.step_times_s.items()) if s > self.num_excluded]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summarize(clock: StepClock, world_size: int, flops_per_token: int | None, device_name: str,
              device_type: str) -> dict[str, float | str | None]:
    """Throughput and MFU over the measured steps (an empty dict when nothing was measured)."""
    times = clock.measured()
    if not times:
        return {}
    tokens_per_s = clock.tokens_per_step * len(times) / sum(times)
    per_device = tokens_per_s / world_size
    peak = peak_flops(device_name) if device_type == "cuda" else None
    return {"tokens_per_s": tokens_per_s, "tokens_per_s_per_device": per_device,
            "step_time_p50_s": statistics.median(times), "step_time_p90_s": percentile(times, 0.9),
            "mfu_pct": 100 * flops_per_token * per_device / peak if peak and flops_per_token else None,
            "peak_flop_per_s": peak, "peak_device": device_name if peak else None,
            "flops_per_token": flops_per_token}
