"""Plans for runtime tests, built directly (the compiler is not involved): the tiny preset on CPU/gloo."""

from __future__ import annotations

from typing import Any

import pytest

from megaspec.runtime.plan import Plan
from megaspec.runtime.presets import PRESETS, flops_per_token, num_params


def _deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def make_plan(ranks: int = 2, *, global_batch: int = 8, micro_batch: int | None = None, steps: int = 6,
              seq_len: int = 32, **overrides: Any) -> Plan:
    """A CPU plan of the tiny preset; `overrides` deep-merge into the plan's JSON."""
    dims = PRESETS["tiny"]
    micro_batch = micro_batch or global_batch // ranks
    raw: dict[str, Any] = {
        "megaspec_version": "0.1.0", "name": "tiny-cpu", "lane": "train", "target": "local",
        "run": {"spec_path": "specs/tiny.yaml", "spec_sha256": "0" * 64},
        "model": {"preset": "tiny", **dims.as_dict(), "num_params": num_params(dims),
                  "flops_per_token": flops_per_token(dims, seq_len)},
        "train": {"steps": steps, "warmup_steps": 1, "global_batch": global_batch, "micro_batch": micro_batch,
                  "grad_accum": global_batch // (micro_batch * ranks), "seq_len": seq_len, "lr": 3e-3,
                  "min_lr_ratio": 0.1, "lr_warmup_steps": 2, "weight_decay": 0.0, "grad_clip": 1.0,
                  "precision": "fp32", "compile": False, "activation_checkpointing": "none",
                  "reshard_after_forward": "default", "seed": 1234, "log_every": 1},
        "data": {"source": "synthetic", "path": None, "stage_from": None, "dtype": "uint16",
                 "path_class": "synthetic"},
        "checkpoint": {"dir": None, "every": None, "resume": "never", "keep": 2},
        "cache": {"policy": "cold", "dir": None, "seed": None},
        "distributed": {"backend": "gloo", "device": "cpu", "nodes": 1, "nproc_per_node": ranks,
                        "world_size": ranks, "timeout_s": 20, "init_timeout_s": 30, "max_restarts": 0, "env": {}},
        "resources": {"gpu_type": None, "gpu_count": 0, "modal_gpu": [], "exact": False, "cpu": None,
                      "memory_mib": None, "timeout_s": 600, "retries": 0, "price_usd_per_hour": None},
        "modal": {"app_name": "tiny", "client_version": "1.6", "image": {"python": "3.11", "base": None, "packages": [], "apt": [],
                                                "uv_version": "0", "env": {}, "builder_version": "0"},
                  "volumes": [], "buckets": [], "secrets": [], "tags": {}, "single_use_containers": True,
                  "runs_dir": "runs"},
    }
    return Plan.model_validate(_deep_update(raw, overrides))


@pytest.fixture
def plan_factory():
    return make_plan
