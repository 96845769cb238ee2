"""`megaspec apply --resume RUN_DIR`: what it refuses, before anything trains (the resumed run itself is
tests/test_local_apply.py's)."""

from __future__ import annotations

import shutil

from tests.cli.test_apply_cli import finished_run, invoke

SPEC = "specs/cpu-local.yaml"


def test_resume_needs_a_run_directory(tmp_path):
    run_dir = finished_run(tmp_path / "runs")  # a manifest and a receipt, but no plan.json
    result = invoke("apply", SPEC, "--resume", str(run_dir), "--out", str(tmp_path / "build"))
    assert result.exit_code == 1 and "is not a run directory" in result.output


def test_resume_refuses_another_plan_and_a_run_without_checkpoints(tmp_path):
    run_dir = finished_run(tmp_path / "runs", state="error")
    assert invoke("compile", SPEC, "-o", str(tmp_path / "build")).exit_code == 0
    shutil.copy(tmp_path / "build" / "tiny-cpu" / "plan.json", run_dir / "plan.json")
    other = invoke("apply", SPEC, "--steps", "7", "--resume", str(run_dir), "--out", str(tmp_path / "build"))
    assert other.exit_code == 1 and "ran another plan" in other.output and "--steps" in other.output
    same = invoke("apply", SPEC, "--resume", str(run_dir), "--out", str(tmp_path / "build"))
    assert same.exit_code == 1 and "has no complete checkpoint to resume from" in same.output


def test_resume_takes_one_spec_not_a_sweep(tmp_path):
    run_dir = finished_run(tmp_path / "runs")
    result = invoke("apply", "specs", "--resume", str(run_dir), "--out", str(tmp_path / "build"))
    assert result.exit_code == 1 and "not a sweep" in result.output
