"""MS311 memory-over-gpu: the estimate against each requested GPU, the fixes it suggests, and the
same numbers in the rule, `megaspec plan` and the plan the runtime receives."""

from __future__ import annotations

from pathlib import Path

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.rules.memory import spec_estimate
from megaspec.runtime.contract import memory
from tests.unit.test_rules_training import lint

BIG = {"preset": "dense-8b", "resources": {"gpu": "H100!:8"},
       "train": {"global_batch": 32, "micro_batch": 4, "seq_len": 8192}}


def _ms311(tmp_path, **over):
    return [d for d in lint(tmp_path, **over) if d.code == "MS311"]


def test_a_model_that_fits_is_clean(tmp_path):
    assert _ms311(tmp_path) == []  # dense-1b on H200:8


def test_over_memory_names_the_gpu_the_estimate_and_a_fix_that_fits(tmp_path):
    [d] = _ms311(tmp_path, **BIG)
    assert d.yaml_path == ("resources", "gpu") and "exceeds the `H100`'s `79.1 GiB`" in d.message
    assert "activations" in d.message and "logits" in d.message
    assert d.hint.startswith("Use `train.activation_checkpointing: full` (est. ")
    assert [r.message for r in d.related] == ["model set here"]


def test_a_smaller_micro_batch_is_suggested_when_it_fits(tmp_path):
    [d] = _ms311(tmp_path, preset="dense-8b", resources={"gpu": "A100-80GB:8"},
                 train={"global_batch": 64, "micro_batch": 8, "seq_len": 8192, "activation_checkpointing": "full"})
    assert d.hint.startswith("Use `train.micro_batch: 2` (est. ") and "checkpointing" not in d.hint


def test_more_gpus_are_suggested_when_nothing_else_fits(tmp_path):
    [d] = _ms311(tmp_path, preset="dense-8b", resources={"gpu": "H100!:2"},
                 train={"global_batch": 32, "micro_batch": 1, "seq_len": 1024, "activation_checkpointing": "full"})
    assert "GPUs per node" in d.hint


def test_every_fallback_gpu_is_checked(tmp_path):
    found = _ms311(tmp_path, preset="dense-3b", resources={"gpu": ["H200:8", "L40S:8"]},
                   train={"global_batch": 64, "micro_batch": 8, "seq_len": 2048})
    assert [d.yaml_path for d in found] == [("resources", "gpu", 1)]


def test_bench_lane_and_cpu_specs_are_not_checked(tmp_path):
    assert _ms311(tmp_path, **BIG, lane="bench") == []
    assert _ms311(tmp_path, preset="dense-8b", target="local", resources={"gpu": None, "ranks": 2},
                  train={"global_batch": 2, "micro_batch": 1, "seq_len": 8192, "compile": False}) == []


def test_rule_plan_and_runtime_compute_the_same_estimate():
    checked = check_spec(Path("specs/h200x8.yaml"))
    assert checked.spec is not None
    plan = plan_for(checked)
    assert memory.for_plan(plan) == spec_estimate(checked.spec)
