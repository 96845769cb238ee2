"""`megaspec compile` and `megaspec plan` end to end (in-process click runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from tests.conftest import REPO_ROOT

BAD = """megaspec: 1
name: bad-batch
resources: {gpu: "H100:8"}
train: {global_batch: 12, micro_batch: 1}
"""


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    monkeypatch.chdir(REPO_ROOT)
    return CliRunner()


def test_compile_directory_writes_every_spec(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(cli, ["compile", "specs", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    specs = [p for p in (REPO_ROOT / "specs").glob("*.yaml") if not p.name.startswith("_")]
    assert result.output.count(": wrote ") == len(specs)
    built = json.loads((tmp_path / "dense-1b-h200x8" / "plan.json").read_text())
    assert built["resources"]["modal_gpu"] == ["H200:8"] and built["run"]["spec_path"] == "specs/h200x8.yaml"
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temp files


def test_compile_refuses_a_spec_with_errors(runner: CliRunner, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = runner.invoke(cli, ["compile", str(bad), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "error[MS" in result.output and "not compiled" in result.output
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(runner: CliRunner):
    assert runner.invoke(cli, ["compile"]).exit_code == 2
    assert runner.invoke(cli, ["plan", "specs/h200x8.yaml", "--target", "mars"]).exit_code == 2
    assert runner.invoke(cli, ["compile", "no/such.yaml"]).exit_code == 2


def test_plan_text_shows_launch_cost_and_origins(runner: CliRunner):
    result = runner.invoke(cli, ["plan", "specs/h200x8.yaml"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "H200:8 x 1 node(s): world size 8 (nccl)" in out
    assert "global 64 = micro 4 x 8 ranks x grad_accum 2" in out
    assert "Modal list prices as of 2026-05-25" in out and "$39.87/h" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert lines["train.steps"].endswith("specs/h200x8.yaml:17")
    assert lines["image.packages"].endswith("specs/_base.yaml:7")
    assert lines["model.d_model"].endswith("preset `dense-1b`")
    assert lines["train.min_lr_ratio"].endswith("default")


@pytest.mark.parametrize(("spec", "says"), [
    ("specs/h200x8.yaml", "cache require-seed: restores the seed at /vol/cache/seed before compiling, or stops "
                          "(MS807); make it once with `megaspec cache seed specs/h200x8.yaml`"),
    ("specs/diag-h200x8.yaml", "cache cold: every run compiles from scratch"),
    ("specs/cpu-local.yaml", None),  # `train.compile: false`: no compile line
])
def test_plan_says_how_the_compile_cache_starts(runner: CliRunner, spec, says):
    out = runner.invoke(cli, ["plan", spec]).output
    line = next((line for line in out.splitlines() if line.startswith("  compile  ")), None)
    assert (line is None) if says is None else line.endswith(says), line
    view = json.loads(runner.invoke(cli, ["plan", spec, "--json"]).output)
    assert (view["launch"]["compile_cache"] is None) == (says is None)


@pytest.mark.parametrize(("target", "says"), [
    ("modal", "W&B dense-125m (online, WANDB_API_KEY from the Secret wandb)"),
    ("local", "W&B dense-125m (offline in <run dir>/wandb, `wandb sync` uploads it)"),
])
def test_plan_says_where_the_trackers_write(runner: CliRunner, target, says):
    def launch(*args: str) -> list[str]:
        return runner.invoke(cli, ["plan", *args]).output.split("\nLaunch\n")[1].split("\n\n")[0].splitlines()

    spec = "tests/golden/ok/MS601_tracker-package-not-in-image.yaml"
    assert f"  tracking     TensorBoard in <run dir>/tensorboard; {says}" in launch(spec, "--target", target)
    assert not any(line.startswith("  tracking") for line in launch("specs/h200x8.yaml"))


def test_plan_json_and_rehearsal(runner: CliRunner):
    result = runner.invoke(cli, ["plan", "specs/h200x8.yaml", "--json", "--target", "local"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["schema_version"] == "megaspec.plan-view.v1" and view["rehearsal"] is True
    assert view["launch"]["world_size"] == 8 and view["launch"]["backend"] == "gloo"
    assert view["cost"]["usd"] is None and view["substitutions"][7].startswith("train.compile kept: backend `inductor` -> `eager`")


def test_plan_diff_against_a_build(runner: CliRunner, tmp_path: Path):
    assert runner.invoke(cli, ["compile", "specs/h100-smoke.yaml", "-o", str(tmp_path)]).exit_code == 0
    build = tmp_path / "dense-125m-h100-smoke"
    same = runner.invoke(cli, ["plan", "specs/h100-smoke.yaml", "--diff", str(build)])
    assert same.output == f"no changes against {build.as_posix()}\n"  # the diff alone, no plan before it
    (build / "app.py").write_text((build / "app.py").read_text().replace("timeout=1800", "timeout=60"))
    changed = runner.invoke(cli, ["plan", "specs/h100-smoke.yaml", "--diff", str(build)])
    assert "-    timeout=60,\n+    timeout=1800,\n" in changed.output


def test_compile_target_local_writes_a_rehearsal(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(cli, ["compile", "specs/diag-h200x8.yaml", "--target", "local", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "diag-tiny-h200x8" / "plan.json").read_text())
    assert plan["run"]["rehearsal"] is True and plan["distributed"]["world_size"] == 8


@pytest.mark.parametrize(("code", "raised", "shown"), [
    ("MS901", "generated app.py does not parse", "internal error[MS901]: generated app.py does not parse"),
    (None, "lower() got an unchecked spec", "internal error[MS902]: lower() got an unchecked spec"),
    (None, "MS901: a message that starts like a code", "internal error[MS902]: MS901: a message that starts"),
])
def test_plan_names_an_internal_error_code_once(runner: CliRunner, monkeypatch, code, raised: str, shown: str):
    from megaspec.compiler.codegen import build
    from megaspec.compiler.codes import STAGE_CODES
    from megaspec.compiler.diagnostics import InternalError

    def broken(*args, **kwargs):
        raise InternalError(raised, *([STAGE_CODES[code]] if code else []))

    monkeypatch.setattr(build, "plan_for", broken)
    result = runner.invoke(cli, ["plan", "specs/h100-smoke.yaml"])
    assert result.exit_code == 3
    assert shown in result.output and result.output.count("MS9") == (2 if "like a code" in raised else 1)
