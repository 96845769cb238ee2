"""Divergence is an outcome: a loss above `train.divergence.factor` x the first logged loss for
`patience` logged steps in a row ends the run `diverged` (stopped there, or finished with
`action: flag`); the receipt keeps its losses and says at which step; `report` never picks it as best.

The rule itself is checked on lists of losses; the run end to end is the real local runtime (two
CPU ranks, gloo) at lr 1.0 without clipping, which diverges within ten steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.manifest import read_manifest
from megaspec.runtime.contract.receipt import read_receipt
from megaspec.runtime.train.loop import diverged
from tests.cli.test_report_cli import best_rows, make_sweep, report
from tests.conftest import run_megaspec
from tests.runtime.conftest import make_plan
from tests.unit.test_manifest import make_manifest

HOT_SPEC = """\
megaspec: 1
name: hot
target: local
resources: {{ranks: 2}}
preset: tiny
train:
  steps: 12
  warmup_steps: 1
  global_batch: 8
  micro_batch: 2
  seq_len: 32
  lr: 1.0
  grad_clip: 0
  weight_decay: 0.0
  divergence: {{action: {action}}}
"""


def rule(**divergence) -> object:
    return make_plan(train={"divergence": divergence})


@pytest.mark.parametrize(("losses", "first_new", "step"), [
    ([5.0, 16.0, 16.0, 16.0], 0, 4),  # three in a row above 3 x 5 = 15: the third of them
    ([5.0, 16.0, 16.0, 14.0, 16.0, 16.0], 0, None),  # a step back under the line starts the count again
    ([5.0, 16.0, 16.0, 14.0, 16.0, 16.0, 16.0], 5, 7),  # counted across log batches (only 6, 7 are new)
    ([5.0, 15.0, 15.0, 15.0], 0, None),  # at the line is not above it
    ([5.0, 16.0, 16.0, 16.0, 16.0], 4, 5),  # judged again on new losses: still above, the new step
])
def test_the_step_that_completes_patience_losses_above_factor_times_the_first(losses, first_new, step):
    found = diverged(rule(factor=3, patience=3), losses, first_new)
    assert (found.step if found else None) == step
    if found:
        assert (found.first_loss, found.factor, found.patience, found.action) == (5.0, 3.0, 3, "stop")


def test_a_plan_written_before_divergence_existed_is_never_judged():
    plan = make_plan()
    old = plan.model_copy(update={"train": plan.train.model_copy(update={"divergence": None})})
    assert diverged(old, [1.0, 100.0, 100.0, 100.0], 0) is None


def test_the_defaults_are_stated_in_the_spec_and_reach_the_plan():
    d = make_plan().train.divergence
    assert (d.factor, d.patience, d.action) == (3.0, 3, "stop")


@pytest.mark.slow
@pytest.mark.parametrize("action", ["stop", "flag"])
def test_lr_1_without_clipping_ends_diverged_with_its_losses(tmp_path, action):
    spec = tmp_path / "hot.yaml"
    spec.write_text(HOT_SPEC.format(action=action))
    result = run_megaspec("apply", str(spec), "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # a diverged run is not a success
    run_dir = next((tmp_path / "runs").iterdir())
    receipt = read_receipt(run_dir / "receipt.json")
    assert read_manifest(run_dir).state == receipt.status == "diverged"
    d = receipt.divergence
    assert d is not None and d.action == action and d.first_loss == receipt.losses[0]
    assert all(x > 3 * d.first_loss for x in receipt.losses[d.step - 3:d.step])
    assert len(receipt.losses) == receipt.steps.completed == (d.step if action == "stop" else 12)
    assert f"diverged at step {d.step}: loss" in result.stdout
    report = run_megaspec("report", str(tmp_path / "runs"), cwd=tmp_path)
    assert report.returncode == 0 and "  *" not in report.stdout and " diverged " in report.stdout
    assert f"diverged at step {d.step}" in report.stdout
    status = run_megaspec("status", str(tmp_path / "runs"), cwd=tmp_path)
    assert " diverged " in status.stdout


def test_report_never_picks_a_diverged_run_as_best(tmp_path):
    sweep_dir = make_sweep(tmp_path)  # s-lr0.003 has the lowest final loss
    receipt_path = sweep_dir / "s-1" / "receipt.json"
    receipt = json.loads(receipt_path.read_text())
    receipt_path.write_text(json.dumps({**receipt, "status": "diverged", "divergence": {
        "step": 3, "loss": 16.0, "first_loss": 5.0, "factor": 3.0, "patience": 3, "action": "flag"}}))
    mf.write_manifest(sweep_dir / "s-1", mf.advance(make_manifest("running").model_copy(update={"run_id": "s-1"}),
                                                    "diverged", receipt="receipt.json"))
    result = report(str(sweep_dir))
    assert best_rows(result.stdout) == ["s-lr0.001"]
    assert "  s-lr0.003: diverged at step 3: loss 16 > 3 x the first (5) for 3 logged step(s); finished" \
           in result.stdout
    compared = report_compare(sweep_dir / "s-0", sweep_dir / "s-1")
    assert "* status" in compared and "DIVERGED" in compared and "s-lr0.003: diverged at step 3" in compared


def report_compare(*runs: Path) -> str:
    return CliRunner().invoke(cli, ["receipts", "compare", *map(str, runs)], catch_exceptions=False).output
