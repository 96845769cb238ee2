"""Unit tests for the MS5xx rules: matrix paths against the Spec model, the name template, include/exclude."""

from __future__ import annotations

import pytest

from megaspec.compiler.lint.rules.sweep_block import is_spec_path
from tests.unit.test_rules_training import codes, lint

MATRIX = {"train.lr": [1.0e-4, 3.0e-4], "train.global_batch": [32, 64]}


@pytest.mark.parametrize(("path", "valid"), [
    ("train.lr", True), ("resources.gpu", True), ("preset", True), ("validate.max_final_loss", True),
    ("buckets.corpus.prefix", True), ("volumes.cache.name", True),
    ("train", False), ("train.lr.x", False), ("name", False), ("sweep.name", False), ("validate_.loss_rtol", False),
    ("buckets.corpus", False), ("train.learning_rate", False), ("", False),
])
def test_is_spec_path(path, valid):
    assert is_spec_path(path) is valid


def test_unknown_matrix_key_gets_did_you_mean(tmp_path):
    [d] = lint(tmp_path, sweep={"matrix": {"train.global_batch_size": [32, 64]}})
    assert (d.code, d.hint) == ("MS501", "Did you mean `train.global_batch`?")


@pytest.mark.parametrize(("name", "expected"), [
    ("{{ name }}-lr{{ matrix['train.lr'] }}-gb{{ matrix['train.global_batch'] }}", []),
    ("{{ name }}-lr{{ matrix['train.lr'] }}", ["MS504"]),  # two runs per learning rate share a name
    ("{{ name }}-{{ loop.index }}", ["MS502"]),
    ("lr{{ matrix['train.lrr'] }}", ["MS502"]),
    ("lr{{ matrix.lr }}", ["MS502"]),
    ("{% if %}", ["MS502"]),
])
def test_name_template(tmp_path, name, expected):
    assert codes(tmp_path, sweep={"matrix": MATRIX, "name": name}) == expected


def test_include_and_exclude_keys(tmp_path):
    ok = {"matrix": MATRIX, "exclude": [{"train.lr": 1.0e-4}], "include": [{"train.lr": 3.0e-4}]}
    assert codes(tmp_path, sweep=ok) == []
    bad = {"matrix": MATRIX, "include": [{"train.steps": 10}]}
    [d] = lint(tmp_path, sweep=bad)
    assert (d.code, d.yaml_path) == ("MS503", ("sweep", "include", 0, "train.steps"))


def test_a_run_name_that_is_no_file_name_is_refused(tmp_path):
    sweep = {"matrix": {"data.stage_from": ["/mnt/a", "/mnt/b"]}, "name": "{{ matrix['data.stage_from'] }}"}
    [d] = lint(tmp_path, sweep=sweep)
    assert (d.code, d.yaml_path) == ("MS504", ("sweep", "name"))
    assert "would be named `unit-/mnt/a`" in d.message  # a `/` would have put the run file elsewhere


def test_run_names_are_judged_with_the_template_name_in_front(tmp_path):
    """A run is named `<template name>-<rendered name>`: 59 rendered characters fit behind `t-`, not behind ten `t`s."""
    sweep = {"matrix": {"train.lr": [1.0e-4, 3.0e-4]}, "name": "lr{{ matrix['train.lr'] }}-" + "x" * 50}
    [d] = lint(tmp_path, name="t" * 10, sweep=sweep)
    assert d.code == "MS504" and f"would be named `{'t' * 10}-lr0.0001-{'x' * 50}`" in d.message
    assert codes(tmp_path, name="t", sweep=sweep) == []


def test_default_run_names_are_checked_too(tmp_path):
    long_name = "x" * 62  # valid alone; `-001` makes it 66 characters
    [d] = lint(tmp_path, name=long_name, sweep={"matrix": MATRIX})
    assert (d.code, d.yaml_path) == ("MS504", ("name",))
    assert codes(tmp_path, sweep={"matrix": MATRIX}) == []
