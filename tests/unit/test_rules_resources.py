"""Unit tests for the MS3xx rules: GPU strings, node limits, upgrades, clusters, images for B300."""

from __future__ import annotations

import pytest

from tests.unit.test_rules_training import codes, lint


@pytest.mark.parametrize("gpu", ["h200:8", "H100!:8", "a100-80gb:8", "B200+:8", "H200"])
def test_gpu_strings_modal_accepts(tmp_path, gpu):
    found = [c for c in codes(tmp_path, resources={"gpu": gpu}, train={"global_batch": None})
             if c in ("MS301", "MS302")]
    assert found == []


def test_unknown_type_did_you_mean_and_bang(tmp_path):
    [d] = lint(tmp_path, resources={"gpu": "h10:8"})
    assert (d.code, d.hint) == ("MS301", "Did you mean `H100`?")
    [d] = lint(tmp_path, resources={"gpu": "A100!:8"})
    assert d.code == "MS301" and "only `H100!`" in d.hint


@pytest.mark.parametrize("gpu", ["H100!:0", "A10:8", "H200:9", "H200:x"])
def test_counts(tmp_path, gpu):
    assert codes(tmp_path, resources={"gpu": gpu}, train={"global_batch": None}) == ["MS302"]


def test_h100_exactness(tmp_path):
    assert codes(tmp_path, resources={"gpu": "H100:8"}) == ["MS303"]
    assert codes(tmp_path, resources={"gpu": "H100!:8"}) == []
    assert codes(tmp_path, resources={"gpu": "H100:8", "exact": True}) == []
    [d] = [d for d in lint(tmp_path, resources={"gpu": ["H200:8", "H100:8"]}) if d.code != "MS313"]
    assert (d.code, d.yaml_path) == ("MS303", ("resources", "gpu", 1))


def test_timeout_limit(tmp_path):
    assert codes(tmp_path, resources={"timeout": "24h"}) == []
    assert codes(tmp_path, resources={"timeout": "1d1s"}) == ["MS304"]


@pytest.mark.parametrize(("resources", "message_part"), [
    ({"gpu": "H200:4", "nodes": 2}, "part of a node"),
    ({"gpu": "A100:8", "nodes": 2}, "cannot run multi-node"),
    ({"gpu": None, "ranks": 2, "nodes": 2}, "CPU-only clusters"),
])
def test_multi_node(tmp_path, resources, message_part):
    found = [d for d in lint(tmp_path, resources=resources, train={"global_batch": None}) if d.code == "MS305"]
    assert len(found) == 1 and message_part in found[0].message


def test_fallback_counts_and_ranks(tmp_path):
    assert codes(tmp_path, resources={"gpu": ["H200:8", "H100!:8"]}) == ["MS313"]  # (the seed: below)
    assert codes(tmp_path, resources={"gpu": ["H200:8", "H100!:4"]}) == ["MS306", "MS313"]
    assert codes(tmp_path, resources={"ranks": 8}) == ["MS307"]


def test_a_required_seed_warns_of_a_fallback_of_another_gpu_type(tmp_path):
    """The seed is compiled on the first type; a run placed on another refuses it (MS812)."""
    [d] = lint(tmp_path, resources={"gpu": ["H200:8", "B200:8"]})
    assert (d.code, str(d.severity), d.yaml_path) == ("MS313", "warning", ("resources", "gpu", 1))
    assert "not the `H200` the seed is compiled on" in d.message and "`cache.policy: warm`" in d.hint
    assert codes(tmp_path, resources={"gpu": ["H200:8", "H200:8"]}) == []  # one type: the seed fits either
    [d] = lint(tmp_path, resources={"gpu": "B200+:8"}, image={"base": "nvidia/cuda:13.1.0-devel-ubuntu24.04"})
    assert (d.code, d.yaml_path) == ("MS313", ("resources", "gpu"))
    assert "`B200+` is served by `B200` or `B300`" in d.message and d.hint == "Ask for `B200` or `B300` by name"
    assert codes(tmp_path, resources={"gpu": ["H200:8", "B200:8"]}, cache={"policy": "cold"},
                 train={"compile": False}) == []


@pytest.mark.parametrize(("gpu", "base", "expected"), [
    ("B300:8", "nvidia/cuda:12.9.1-devel-ubuntu22.04", ["MS308"]),
    ("B200+:8", "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-devel", ["MS308"]),
    ("B300:8", "nvidia/cuda:13.1.0-devel-ubuntu24.04", []),
    ("B200:8", "nvidia/cuda:12.8.1-devel-ubuntu22.04", []),
])
def test_cuda_for_b300(tmp_path, gpu, base, expected):
    found = codes(tmp_path, resources={"gpu": gpu}, image={"base": base})
    assert [c for c in found if c != "MS313"] == expected  # MS313 (a seed on `B200+`) has its own test above


def test_exact_without_h100_and_cpu_on_modal(tmp_path):
    assert codes(tmp_path, resources={"exact": True}) == ["MS309"]
    cpu = {"resources": {"gpu": None, "ranks": 2}, "train": {"global_batch": 8, "compile": False}}
    assert codes(tmp_path, **cpu) == ["MS310"]
    assert codes(tmp_path, lane="validate", validate={"max_final_loss": 4.0}, **cpu) == []


@pytest.mark.parametrize(("gpu", "code", "hint_part"), [
    ("", "MS301", "CPU-only run"),  # a blank entry is not a CPU run
    ("\t", "MS301", "CPU-only run"),
    (":8", "MS301", "CPU-only run"),
    ([], "MS301", "at least one GPU"),
    ("H100x8", "MS301", "Write `H100:8`"),
    ("h200X4", "MS301", "Write `H200:4`"),
    ("H100:", "MS302", "Write `H100:N`"),
])
def test_gpu_strings_that_name_no_gpu_are_errors(tmp_path, gpu, code, hint_part):
    [d] = lint(tmp_path, resources={"gpu": gpu})
    assert d.code == code and d.is_error and hint_part in d.hint and d.span is not None


def test_every_bad_fallback_is_reported_at_its_own_entry(tmp_path):
    found = lint(tmp_path, resources={"gpu": ["H200:8", "FOO:8", "H100:x"]})
    assert [(d.code, d.yaml_path) for d in found] == [("MS301", ("resources", "gpu", 1)),
                                                       ("MS302", ("resources", "gpu", 2))]


def test_lower_case_gpu_type_is_a_warning_with_the_canonical_spelling(tmp_path):
    found = lint(tmp_path, resources={"gpu": "h200:8"})
    assert [(d.code, str(d.severity), d.hint) for d in found] == [("MS312", "warning", "Write `H200`")]
    [d] = [d for d in lint(tmp_path, resources={"gpu": ["H200:8", "b200+:8"]}) if d.code != "MS313"]
    assert (d.code, d.yaml_path, d.fix.replacement) == ("MS312", ("resources", "gpu", 1), '"B200+:8"')
