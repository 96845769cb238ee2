"""codegen/build.py: what a spec is made of (hash with its bases), and `--steps` seen by the rules."""

from __future__ import annotations

import hashlib

from megaspec.compiler.codegen.build import plan_for, spec_sha256
from megaspec.compiler.commands.prepare import steps_adjustment
from megaspec.compiler.lint.check import check_spec

BASE = "megaspec: 1\npreset: tiny\ntarget: local\nresources: {ranks: 2}\ntrain: {steps: 20, warmup_steps: 5}\n"


def test_spec_hash_covers_the_bases(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base.yaml").write_text(BASE, encoding="utf-8")
    (tmp_path / "alone.yaml").write_text(BASE + "name: alone\n", encoding="utf-8")
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nname: run\n", encoding="utf-8")
    alone = plan_for(check_spec("alone.yaml"))
    assert alone.run.spec_sha256 == hashlib.sha256((tmp_path / "alone.yaml").read_bytes()).hexdigest()
    before = plan_for(check_spec("run.yaml")).run.spec_sha256
    assert before == spec_sha256(["run.yaml", "base.yaml"])
    (tmp_path / "base.yaml").write_text(BASE + "image: {python: '3.12'}\n", encoding="utf-8")
    assert plan_for(check_spec("run.yaml")).run.spec_sha256 != before  # only the base changed


def test_steps_override_is_what_the_rules_check(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(BASE + "name: s\n", encoding="utf-8")
    checked = check_spec(spec, adjust=steps_adjustment(3))
    assert (checked.spec.train.steps, checked.spec.train.warmup_steps) == (3, 1)
    assert [d.code for d in checked.diagnostics] == []
    plan = plan_for(checked, overridden={"train.steps": "command line (--steps)"})
    assert (plan.train.steps, plan.train.warmup_steps) == (3, 1)
    assert plan.run.origins["train.steps"] == "command line (--steps)"
    assert plan.run.origins["train.warmup_steps"].endswith("s.yaml:5")


def test_rules_judge_the_run_that_steps_makes(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(BASE.replace("steps: 20", "steps: 5") + "name: s\n", encoding="utf-8")
    assert [d.code for d in check_spec(spec).diagnostics] == ["MS203"]  # warmup 5 covers 5 steps
    assert [d.code for d in check_spec(spec, adjust=steps_adjustment(20)).diagnostics] == []
