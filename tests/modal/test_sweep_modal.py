"""A sweep on Modal through the real client and Modal's own test server: `sweep.max_parallel` calls
at a time, the rest `planned`, and each `collect` of the sweep directory launches runs into the slots
that finished runs freed (no daemon)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs.sweep_manifest import read_sweep
from tests.modal.test_lifecycle import receipt_for

TEMPLATE = """megaspec: 1
name: tiny-modal-sweep
lane: train
target: modal
resources: {ranks: 2}
preset: tiny
train: {steps: 4, warmup_steps: 1, global_batch: 8, micro_batch: 2, seq_len: 32, precision: fp32, compile: false}
data: {source: synthetic}
sweep:
  matrix:
    train.lr: [1.0e-3, 2.0e-3, 3.0e-3]
  max_parallel: 2
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_max_parallel_caps_calls_and_collect_launches_the_rest_as_runs_finish(mock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the project: a queued run's app is rendered again only inside it
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    calls = lambda: len(mock.state()["function_calls"]) - before  # noqa: E731 - one server for the session
    before = len(mock.state()["function_calls"])
    # CPU containers have no throughput estimate, so the cost is unknown: the gate needs --yes
    refused = invoke("apply", str(template), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"))
    assert refused.exit_code == 1 and "estimated cost unknown" in refused.stderr
    result = invoke("apply", str(template), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"), "--yes")
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    sweep = read_sweep(sweep_dir)
    assert [r.state for r in sweep.runs] == ["detached", "detached", "planned"]
    assert calls() == 2
    assert "1 waiting `planned` (max_parallel 2)" in result.stdout

    Path(sweep.runs[2].app).unlink()  # a cleaned build folder: the queued run's app is rendered again from its plan
    mock.set("error.txt", "boom")  # both calls fail: a failed run frees its slot like a finished one
    mock.set("error_status", "FAILURE")
    collected = invoke("collect", str(sweep_dir))
    assert [r.state for r in read_sweep(sweep_dir).runs] == ["error", "error", "detached"]
    assert calls() == 3, collected.output
    assert Path(sweep.runs[2].app).is_file()

    mock.clear()
    third = sweep_dir / read_sweep(sweep_dir).runs[2].run_dir
    mock.set("result.json", json.dumps(receipt_for(third)))
    invoke("collect", str(sweep_dir))
    sweep = read_sweep(sweep_dir)
    assert [r.state for r in sweep.runs] == ["error", "error", "ok"] and sweep.is_finished
    assert calls() == 3  # nothing left to launch


def test_a_launch_that_fails_is_said_and_leaves_the_rest_planned(mock, tmp_path):
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE)
    mock.set("fail_create.txt", "image build failed")  # Modal refuses to create the function
    result = invoke("apply", str(template), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"), "--yes")
    assert result.exit_code == 1, result.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    assert [r.state for r in read_sweep(sweep_dir).runs] == ["error", "error", "planned"]
    assert "tiny-modal-sweep-001: error  error[bootstrap]: " in result.stdout and "image build failed" in result.stdout
    assert "2 run(s) launched (2 failed to start: see above), 1 waiting `planned`" in result.stdout
