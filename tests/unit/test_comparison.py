"""The comparison class: which receipts may be put side by side, and the refusal that names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from megaspec.compiler.runs.compare_view import format_compare, refusal, setting_differences
from megaspec.compiler.runs.comparison import class_differences, comparison_class
from megaspec.compiler.runs.records import RunRecord, metric_values
from megaspec.runtime.contract.receipt import Receipt
from tests.runtime.conftest import make_plan
from tests.unit.test_manifest import make_receipt


def record(plan_overrides: dict | None = None, name: str = "run-a", **receipt_fields) -> RunRecord:
    raw = {**make_receipt(), "name": name, **receipt_fields}
    return RunRecord(Path(name), Receipt.model_validate(raw), make_plan(**(plan_overrides or {})))


H200X8 = {"requested_gpu": "H100", "requested_gpu_count": 8, "requested_exact": False,
          "observed_devices": ["NVIDIA H200"] * 8, "observed_gpu_count": 8, "matches_request": False}


def test_runs_that_differ_only_in_settings_are_one_class():
    a, b = record({"train": {"lr": 1e-3}}), record({"train": {"lr": 3e-3}}, name="run-b")
    assert class_differences([a, b]) == [] and refusal([a, b]) is None
    assert setting_differences([a, b]) == [("train.lr", [1e-3, 3e-3])]  # the name is not a setting


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"lane": "bench"}, "lane", "lane"),
    ({"rehearsal": True}, "rehearsal", "rehearsal"),
    ({"hardware": H200X8}, "gpu", "observed GPU type"),
])
def test_a_different_class_is_refused_naming_the_field(change, field, words):
    a, b = record(), record(name="run-b", **change)
    assert class_differences([a, b])[0][0] == field
    message, hint = refusal([a, b])
    assert message.startswith(f"these runs are of different comparison classes: {words} is ")
    assert "(run-a)" in message and "(run-b)" in message and "--force" in hint


def test_world_size_and_model_shape_are_part_of_the_class():
    wider = record({"model": {"d_model": 128}}, name="run-b")
    assert [f for f, _ in class_differences([record(), wider])] == ["model"]
    dist = {**make_receipt()["distributed"], "world_size": 4, "nproc_per_node": 4}
    assert [f for f, _ in class_differences([record(), record(name="run-b", distributed=dist)])] == ["world_size"]


def test_an_h100_request_served_by_h200s_is_its_own_class():
    served = record(name="run-b", hardware=H200X8)
    cls = comparison_class(served)
    assert (cls["gpu"], cls["gpu_count"], cls["matches_request"]) == ("H200", 8, False)


def test_forced_table_marks_the_class_fields_that_differ():
    text = format_compare([record(), record(name="run-b", lane="bench")], forced=True)
    assert "DIFFERENT comparison classes (--force)" in text and "! lane" in text


def test_cost_per_million_tokens_from_the_receipt_cost_and_tokens_processed():
    cost = {"prices_as_of": "2026-05-25", "gpu_type": "H100", "usd_per_gpu_hour": 3.9492, "gpu_seconds": 3600.0,
            "usd": 3.9492, "est_usd": 3.5, "est_duration_s": 3000, "est_worst_case_usd": 8.0}
    steps = {"planned": 10, "completed": 10, "warmup_excluded": 2, "measured": 8}
    r = record(cost=cost, steps=steps)  # make_plan: global batch 8 x seq 32 tokens a step
    values = metric_values(r)
    assert values["cost_usd"] == 3.9492 and values["est_cost_usd"] == 3.5
    assert values["usd_per_mtok"] == pytest.approx(3.9492 / (10 * 8 * 32 / 1e6))


def test_every_objective_a_spec_may_name_is_a_metric_report_computes():
    """`sweep.objective.metric` is checked by the spec model, which may not import `runs/` (it comes
    first in the pipeline); this holds the model's list to the metrics `records.py` computes, so
    lint never accepts an objective that `report` cannot rank by."""
    import typing

    from megaspec.compiler.runs.records import METRICS
    from megaspec.compiler.runs.report_table import DEFAULT_OBJECTIVES
    from megaspec.compiler.spec.model import ObjectiveMetric

    computed = {key for key, _, _ in METRICS}
    assert set(typing.get_args(ObjectiveMetric)) <= computed
    assert {metric for metric, _ in DEFAULT_OBJECTIVES.values()} <= set(typing.get_args(ObjectiveMetric))


def test_runs_of_different_user_model_code_are_never_one_class(tmp_path):
    """The same entry and args over edited code: the plans' code sha256 differ, so the classes do."""
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "pkg" / "m.py").write_text("def build(**kw):\n    return None\n", encoding="utf-8")
    model = {"entry": "pkg.m:build", "code": [str(code)], "args": {"width": 8}, "vocab_size": 256}
    before = RunRecord(Path("run-a"), Receipt.model_validate(make_receipt()), make_plan(preset=None, model=model))
    (code / "pkg" / "m.py").write_text("def build(**kw):\n    return 1\n", encoding="utf-8")
    after = RunRecord(Path("run-b"), Receipt.model_validate({**make_receipt(), "name": "run-b"}),
                      make_plan(preset=None, model=model))
    assert [f for f, _ in class_differences([before, after])] == ["code"]
    assert comparison_class(before)["model"] == "pkg.m:build(width=8) v256"
