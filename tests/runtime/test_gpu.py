"""GPU runs (skipped without CUDA): bf16 mixed precision, per-block compile, MFU, NCCL."""

from __future__ import annotations

import pytest
import torch

from megaspec.runtime.contract import memory
from megaspec.runtime.contract.gpus import device_gpu_type, peak_flops
from megaspec.runtime.contract.presets import PRESETS, flops_per_token, num_params
from megaspec.runtime.launch.entry import run_plan

from .conftest import make_plan

pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def gpu_plan(tmp_path, **train) -> tuple:
    ranks = min(2, torch.cuda.device_count())
    name = torch.cuda.get_device_name(0)
    # The spec names a Modal type (lint refuses others); a GPU megaspec has no name for runs as an H100.
    plan = make_plan(ranks, gpu=device_gpu_type(name) or "H100", global_batch=8, steps=8, seq_len=64,
                     train={"precision": "bf16", "compile": True, **train}, distributed={"init_timeout": 600},
                     plan={"cache": {"dir": str(tmp_path / "inductor")}})
    return plan, name


def test_bf16_compiled_run_reports_mfu_and_cache_state(tmp_path):
    plan, name = gpu_plan(tmp_path)
    receipt = run_plan(plan, tmp_path / "cold")
    assert receipt["status"] == "ok", receipt["error"]
    assert receipt["parallelism"]["param_dtype"] == "bfloat16"
    assert receipt["hardware"]["matches_request"] is True
    assert receipt["losses"][-1] < receipt["losses"][0]
    metrics = receipt["metrics"]
    if peak_flops(name) is not None:
        assert metrics["mfu_pct"] > 0 and metrics["peak_flop_per_s"] == peak_flops(name)
    cold = receipt["per_rank"][0]["cache"]
    assert cold["state"] == "cold" and cold["fxgraph_misses"] > 0
    warm = run_plan(plan, tmp_path / "warm")["per_rank"][0]["cache"]
    assert warm["state"] == "warm" and warm["fxgraph_hits"] > 0


def test_bf16_matches_fp32_loosely_with_activation_checkpointing(tmp_path):
    bf16 = run_plan(gpu_plan(tmp_path, activation_checkpointing="full", compile=False)[0], tmp_path / "bf16")
    fp32 = run_plan(gpu_plan(tmp_path, precision="fp32", compile=False)[0], tmp_path / "fp32")
    assert bf16["status"] == fp32["status"] == "ok"
    assert bf16["losses"] == pytest.approx(fp32["losses"], rel=2e-2)


def test_measured_peak_memory_is_close_to_the_estimate(tmp_path):
    """The estimate `megaspec plan` prints, against `torch.cuda.max_memory_allocated` on the real GPU.

    Eager (compile saves less), and a model big enough that the allocator's 512-byte rounding and
    the first-use workspaces are noise.
    """
    dims = PRESETS["dense-125m"]
    ranks = min(2, torch.cuda.device_count())
    plan, _ = gpu_plan(tmp_path, compile=False, global_batch=4 * ranks, micro_batch=4, seq_len=1024, grad_accum=1)
    plan = plan.model_copy(update={"model": plan.model.model_copy(update={
        **dims.as_dict(), "num_params": num_params(dims), "flops_per_token": flops_per_token(dims, 1024)})})
    receipt = run_plan(plan, tmp_path / "mem")
    assert receipt["status"] == "ok", receipt["error"]
    metrics = receipt["metrics"]
    assert metrics["est_peak_mem_gib"] == pytest.approx(memory.for_plan(plan).allocated / memory.GIB)
    assert 0.75 <= metrics["peak_mem_gib"] / metrics["est_peak_mem_gib"] <= 1.10, metrics
