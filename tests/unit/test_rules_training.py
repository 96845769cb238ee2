"""Unit tests for the MS2xx rules (training and distributed), through `check_spec` on small specs.

Specs are written as JSON (valid YAML) from one clean base plus overrides; the golden files cover
locations and wording, these cover the edges of each condition.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from megaspec.compiler.diagnostics import Diagnostic, Severity
from megaspec.compiler.lint.check import check_spec

BASE: dict[str, Any] = {
    "megaspec": 1, "name": "unit", "lane": "train", "target": "modal",
    "resources": {"gpu": "H200:8", "timeout": "2h"},
    "image": {"python": "3.11", "packages": ["torch==2.8.0"]},
    "volumes": {"cache": {"name": "ms-compile-cache", "mount": "/vol/cache"}},
    "cache": {"policy": "require-seed", "seed": "/vol/cache/seed"},
    "preset": "dense-1b",
    "train": {"steps": 300, "warmup_steps": 30, "global_batch": 64, "micro_batch": 4, "seq_len": 2048,
              "compile": True},
}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def lint(tmp_path: Path, **over: Any) -> list[Diagnostic]:
    """Diagnostics for BASE with `over` merged in (a None value removes the key)."""
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(_merge(BASE, over), indent=1), encoding="utf-8")
    return check_spec(path).diagnostics


def codes(tmp_path: Path, **over: Any) -> list[str]:
    return [d.code for d in lint(tmp_path, **over)]


def test_base_spec_is_clean(tmp_path):
    assert codes(tmp_path) == []


@pytest.mark.parametrize(("train", "expected"), [
    ({"global_batch": 60}, ["MS201"]),
    ({"global_batch": 16}, ["MS202"]),
    ({"global_batch": 96}, []),
    ({"global_batch": None}, []),  # lower derives it from micro_batch x ranks
])
def test_batch_geometry(tmp_path, train, expected):
    assert codes(tmp_path, train=train) == expected


def test_batch_geometry_counts_cpu_ranks_and_nodes(tmp_path):
    cpu = {"resources": {"gpu": None, "ranks": 3}, "target": "local", "train": {"global_batch": 8, "micro_batch": 1,
                                                                               "compile": False}}
    assert codes(tmp_path, **cpu) == ["MS201"]
    multi = {"resources": {"nodes": 2}, "train": {"global_batch": 96}}  # 16 ranks x 4 = 64
    [d] = lint(tmp_path, **multi)
    assert (d.code, d.hint) == ("MS201", "Use a multiple of `64`, e.g. `64`, `128`")


def test_warmup_reported_at_steps_when_warmup_is_default(tmp_path):
    [d] = lint(tmp_path, train={"steps": 2, "warmup_steps": None})
    assert (d.code, d.yaml_path) == ("MS203", ("train", "steps"))


def test_heads_checks_use_preset_dims(tmp_path):
    found = lint(tmp_path, model={"n_heads": 12})  # dense-1b: d_model 2048, n_kv_heads 8
    assert [(d.code, d.yaml_path) for d in found] == [("MS204", ("model", "n_heads"))] * 2
    assert codes(tmp_path, model={"n_heads": 32}) == []


def test_seq_len_against_overridden_max(tmp_path):
    assert codes(tmp_path, model={"max_seq_len": 1024}) == ["MS205"]


@pytest.mark.parametrize(("over", "expected"), [
    ({"cache": {"policy": "warm", "seed": None}}, ["MS206"]),
    ({"cache": {"policy": "warm", "seed": None}, "preset": "tiny", "train": {"seq_len": 128}}, []),
    ({"cache": {"policy": "warm", "seed": None}, "resources": {"gpu": "H200:1"}, "train": {"global_batch": 4}}, []),
    ({"cache": {"policy": "cold", "seed": None}, "train": {"compile": False}}, []),
])
def test_cold_compile(tmp_path, over, expected):
    assert codes(tmp_path, **over) == expected


def test_cold_compile_is_a_warning_on_validate(tmp_path):
    [d] = [d for d in lint(tmp_path, lane="validate", validate={"max_final_loss": 5.0},
                           cache={"policy": "warm", "seed": None}) if d.code == "MS206"]
    assert d.severity is Severity.WARNING


def test_cold_compile_asks_for_the_cache_volume_that_ms214_would_ask_for_next(tmp_path):
    [without] = [d for d in lint(tmp_path, cache={"policy": "warm", "seed": None}, volumes={"cache": None})
                 if d.code == "MS206"]
    assert "`volumes.cache: {name: ms-compile-cache, mount: /vol/cache}`" in without.hint
    volumes = {"cache": {"name": "c", "mount": "/vol/cache"}}
    [with_volume] = [d for d in lint(tmp_path, cache={"policy": "warm", "seed": None}, volumes=volumes)
                     if d.code == "MS206"]
    assert "volumes.cache" not in with_volume.hint


@pytest.mark.parametrize(("distributed", "expected"), [
    ({"debug": "DETAIL"}, ["MS207"]),
    ({"heartbeat": "on"}, ["MS208"]),
    ({"autotune": True}, ["MS209"]),
    ({"timeout": "5m"}, ["MS210"]),
    ({"timeout": "5m", "init_timeout": "20m"}, []),
    ({"init_timeout": "9m"}, ["MS210"]),
])
def test_distributed_settings(tmp_path, distributed, expected):
    assert codes(tmp_path, distributed=distributed) == expected


def test_distributed_settings_single_gpu(tmp_path):
    single = {"resources": {"gpu": "H200:1"}, "train": {"global_batch": 4}}
    assert codes(tmp_path, distributed={"debug": "DETAIL", "autotune": True, "timeout": "1m"}, **single) == []


def test_bf16_on_cpu_only_when_written(tmp_path):
    cpu = {"resources": {"gpu": None, "ranks": 2}, "target": "local", "preset": "tiny", "cache": None,
           "volumes": None, "train": {"seq_len": 128, "global_batch": 8, "compile": False}}
    assert codes(tmp_path, **cpu) == []
    assert codes(tmp_path, **_merge(cpu, {"train": {"precision": "bf16"}})) == ["MS211"]


def test_retries_and_checkpoints(tmp_path):
    ckpt_vol = {"volumes": {"checkpoints": {"name": "ms-ckpt", "mount": "/vol/ckpt"}}}
    assert codes(tmp_path, resources={"retries": 1}) == ["MS212"]
    assert codes(tmp_path, resources={"retries": 1}, checkpoint={"every": 50}, **ckpt_vol) == []
    assert codes(tmp_path, checkpoint={"every": 50}) == ["MS213"]
    assert codes(tmp_path, checkpoint={"every": 50}, target="local") == []


def test_cache_seed_without_cache_volume(tmp_path):
    [d] = lint(tmp_path, volumes=None)
    assert (d.code, d.yaml_path) == ("MS214", ("cache", "policy"))


@pytest.mark.parametrize(("over", "expected"), [
    ({"lane": "validate"}, ["MS215"]),
    ({"lane": "validate", "validate": {"reference_receipt": "runs/r1/receipt.json"}}, []),
    ({"validate": {"max_final_loss": 4.0}}, ["MS216"]),
    ({"lane": "bench", "bench": {"ops": ["gemm"]}}, []),
])
def test_lanes(tmp_path, over, expected):
    assert codes(tmp_path, **over) == expected
