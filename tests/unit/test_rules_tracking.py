"""Unit tests for the MS6xx rules (tracking) and the tracking plan: the edges the goldens do not show."""

from __future__ import annotations

import pytest

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.lint.check import check_spec
from tests.unit.test_rules_training import codes, lint

WANDB = {"wandb": {"project": "sweeps"}}
KEY = "9c8b7a6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"  # a W&B cloud key's shape: 40 hex characters


@pytest.mark.parametrize(("over", "expected"), [
    ({"tracking": WANDB}, ["MS601", "MS602"]),
    ({"tracking": WANDB, "secrets": ["wandb"], "image": {"packages": ["torch==2.8.0", "Wandb==0.21.0"]}}, []),
    ({"tracking": WANDB, "target": "local", "resources": {"gpu": None, "ranks": 2}, "volumes": None,
      "cache": None, "preset": "tiny", "train": {"global_batch": 8, "micro_batch": 4, "seq_len": 64}}, []),
    ({"tracking": {"tensorboard": False, "wandb": None}}, []),  # a block that turns nothing on needs nothing
])
def test_what_a_modal_run_that_tracks_needs(tmp_path, over, expected):
    assert codes(tmp_path, **over) == expected


def test_a_literal_wandb_key_anywhere_is_a_masked_credential(tmp_path):
    found = lint(tmp_path, tracking={"wandb": {"project": "p", "api_key": KEY}}, secrets=["wandb"],
                 image={"packages": ["torch==2.8.0", "wandb==0.21.0"], "env": {"WANDB_API_KEY": KEY}})
    assert sorted(d.code for d in found) == ["MS101", "MS405", "MS405"]
    assert all(KEY not in d.message for d in found)
    assert {d.yaml_path for d in found if d.code == "MS405"} == {("tracking", "wandb", "api_key"),
                                                                  ("image", "env", "WANDB_API_KEY")}


@pytest.mark.parametrize(("target", "mode"), [("modal", "online"), ("local", "offline")])
def test_wandb_logs_online_only_on_modal(tmp_path, target, mode):
    path = tmp_path / "spec.yaml"
    path.write_text("megaspec: 1\nname: t\npreset: tiny\nresources: {gpu: \"H100!:1\"}\nsecrets: [wandb]\n"
                    "image: {packages: [torch==2.8.0, wandb==0.21.0]}\n"
                    "tracking: {wandb: {project: p, group: g}}\n")
    checked = check_spec(path)
    assert checked.diagnostics == []
    plan = plan_for(checked, target=target)  # `--target local`: a rehearsal logs offline too
    assert (plan.tracking.wandb.mode, plan.tracking.wandb.group, plan.tracking.tensorboard) == (mode, "g", None)


def test_a_name_w_and_b_refuses_gets_a_hint_on_what_it_may_hold(tmp_path):
    [d] = lint(tmp_path, tracking={"wandb": {"project": "team/sweeps"}}, secrets=["wandb"],
               image={"packages": ["torch==2.8.0", "wandb==0.21.0"]})
    assert (d.code, d.message) == ("MS106", "`\"team/sweeps\"` in `tracking.wandb.project` is not a W&B name")  # as JSON wrote it
    assert "a team goes in `tracking.wandb.entity`" in d.hint
