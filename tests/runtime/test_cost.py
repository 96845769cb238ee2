"""Cost in the receipt: observed GPU-seconds x the observed GPU's dated list price, beside the estimate."""

from __future__ import annotations

import pytest

from megaspec.runtime.contract import cost, gpus
from megaspec.runtime.contract.receipt import Hardware

from .conftest import make_plan

H100_PLAN = {"ranks": 8, "gpu": "H100", "target": "modal", "resources": {"timeout": "1h", "retries": 1}}


def hardware(devices: list[str], requested: str | None = "H100") -> Hardware:
    gpus = [d for d in devices if d != "cpu"]
    return Hardware(requested_gpu=requested, requested_gpu_count=len(gpus), requested_exact=False,
                    observed_devices=devices, observed_gpu_count=len(gpus), matches_request=None)


@pytest.mark.parametrize(("device", "modal_type"), [
    ("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA H200", "H200"), ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
    ("NVIDIA A100 80GB PCIe", "A100-80GB"), ("NVIDIA A100-SXM4-40GB", "A100-40GB"), ("NVIDIA A10G", "A10"),
    ("NVIDIA A10", "A10"), ("NVIDIA L40S", "L40S"), ("NVIDIA L4", "L4"), ("Tesla T4", "T4"),
    ("NVIDIA B200", "B200"), ("NVIDIA B300", "B300"), ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX-PRO-6000"),
    ("cpu", None), ("Tesla V100-SXM2-16GB", None),
])
def test_device_names_map_to_the_gpu_table(device, modal_type):
    assert gpus.device_gpu_type(device) == modal_type
    assert modal_type is None or modal_type in gpus.GPUS


def test_an_upgraded_request_is_billed_as_requested_with_cpu_and_memory_split_out():
    # An H100 request served by H200s: Modal bills it as H100s (PRICE_SOURCE), GPUs + CPU + memory.
    plan = make_plan(**H100_PLAN)
    c = cost.of_attempt(plan, hardware(["NVIDIA H200"] * 8), "2026-01-01T00:00:00.000000Z",
                        "2026-01-01T00:30:00.000000Z")
    assert (c.gpu_type, c.billed_gpu_type, c.usd_per_gpu_hour) == ("H200", "H100", gpus.GPUS["H100"].usd_per_hour)
    assert c.gpu_seconds == 8 * 1800 and c.billed_s == 1800 and c.startup_s is None  # off Modal: not measured
    assert c.gpu_usd == pytest.approx(8 * 0.5 * gpus.GPUS["H100"].usd_per_hour, abs=1e-4)
    assert c.usd == pytest.approx(c.gpu_usd + c.cpu_usd + c.memory_usd, abs=2e-4) and c.cpu_usd > 0 < c.memory_usd
    assert c.usd == pytest.approx(0.5 * plan.resources.price_usd_per_hour, abs=2e-4)  # the estimate's rate
    assert c.prices_as_of == cost.PRICES_AS_OF and "modal.com/pricing" in c.price_source
    est = cost.estimate(plan)
    assert (c.est_usd, c.est_duration_s, c.est_worst_case_usd) == (est.usd, est.duration_s, est.worst_case_usd)
    assert plan.resources.price_usd_per_hour > 8 * gpus.GPUS["H100"].usd_per_hour  # GPUs plus CPU and memory
    assert c.est_worst_case_usd == round(2 * plan.resources.price_usd_per_hour, 2)  # 2 attempts x 1 h


@pytest.mark.parametrize(("requested", "observed", "billed"), [
    (["H100"], "H200", "H100"), (["H100"], "H100", "H100"), (["H200", "H100"], "H100", "H100"),
    (["A100"], "A100-80GB", "A100"), (["B200+"], "B300", "B200+"), (["H100"], "A10", "A10"), (["H100"], None, None),
])
def test_modal_bills_an_upgrade_at_the_requested_type_and_a_fallback_at_its_own(requested, observed, billed):
    assert cost.billed_gpu_type(requested, observed) == billed


def test_one_hour_on_h200x8_costs_the_same_in_the_receipt_the_plan_and_the_sweep_preview():
    from megaspec.compiler.codegen.sweep_estimate import preview_lines

    plan = make_plan(ranks=8, gpu="H200", target="modal")
    hour = cost.of_attempt(plan, hardware(["NVIDIA H200"] * 8, "H200"), "2026-01-01T00:00:00Z",
                           "2026-01-01T01:00:00Z")
    estimate = cost.estimate(plan)
    lines, _, _ = preview_lines([("run", {}, plan, estimate)])
    per_hour = lines[1].split()[-1]
    assert f"${hour.usd:,.2f}" == f"${estimate.usd_per_hour:,.2f}" == per_hour == "$39.87"  # was $36.32: GPUs only


def test_cpu_runs_cost_nothing():
    c = cost.of_attempt(make_plan(), hardware(["cpu"], None), "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
    assert (c.usd, c.gpu_seconds, c.gpu_type, c.est_usd, c.est_worst_case_usd) == (0.0, 0.0, None, 0.0, 0.0)


def test_an_unpriced_gpu_has_no_cost_rather_than_a_wrong_one():
    plan = make_plan(**H100_PLAN)
    c = cost.of_attempt(plan, hardware(["NVIDIA GeForce RTX 4090"]), "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
    assert c.gpu_type is None and c.usd is None and c.gpu_seconds == 60


def test_an_unfinished_attempt_has_no_gpu_seconds():
    plan = make_plan(**H100_PLAN)
    assert cost.of_attempt(plan, hardware(["NVIDIA H100"]), "2026-01-01T00:00:00Z", None).gpu_seconds == 0


def test_container_startup_is_measured_on_modal_only_and_billed(monkeypatch):
    """On Modal (MODAL_TASK_ID set) the container's first process (/proc/1) started before the launcher:
    that start-up is billed time. Here /proc/1 is this machine's init, so the number is large but real."""
    monkeypatch.delenv("MODAL_TASK_ID", raising=False)
    assert cost.container_startup_s("2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z") is None
    monkeypatch.setenv("MODAL_TASK_ID", "ta-1")
    from megaspec.runtime.contract.clock import utc_now

    now = utc_now()
    startup = cost.container_startup_s(now, now)
    assert startup is not None and startup >= 0
    plan = make_plan(ranks=8, gpu="H200", target="modal")
    c = cost.of_attempt(plan, hardware(["NVIDIA H200"] * 8, "H200"), now, now)
    assert c.startup_s is not None and c.billed_s == c.startup_s
    assert c.startup_usd == pytest.approx(plan.resources.price_usd_per_hour * c.startup_s / 3600, abs=1e-3)
