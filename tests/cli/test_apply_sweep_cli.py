"""`megaspec apply TEMPLATE`: the preview, the cost gate, and refusing a sweep with a bad run.

Nothing here trains (tests/test_sweep_local.py runs a sweep for real): every case stops before launch,
and each checks that a sweep that did not launch leaves no sweep directory behind.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from tests.conftest import REPO_ROOT, tiny_cpu_spec

EXAMPLE = REPO_ROOT / "examples" / "sweeps" / "lr-batch-sweep.yaml"
CPU_TEMPLATE = tiny_cpu_spec("tiny-sweep", "sweep:", "  matrix:", "    train.micro_batch: [2, 3]")


def invoke(tmp_path: Path, *args: str):
    return CliRunner().invoke(cli, ["apply", *args, "--runs-dir", str(tmp_path / "runs"), "-o",
                                    str(tmp_path / "build")], catch_exceptions=False)


def sweep_dirs(tmp_path: Path) -> list[Path]:
    """What a refused sweep left under the runs directory (it did not exist before: it must not now)."""
    return [tmp_path / "runs"] if (tmp_path / "runs").exists() else []


def test_a_run_that_breaks_a_rule_stops_the_whole_sweep_before_launch(tmp_path):
    template = tmp_path / "t.yaml"
    template.write_text(CPU_TEMPLATE)
    result = invoke(tmp_path, str(template))
    assert result.exit_code == 1
    # micro_batch 3 x 2 ranks does not divide global_batch 8: the run's own spec file is named
    assert "tiny-sweep-002.yaml:" in result.stderr and "error[MS2" in result.stderr
    assert "1 error(s) in the sweep's runs; nothing was launched" in result.stderr
    assert sweep_dirs(tmp_path) == []


def test_preview_shows_each_run_and_totals_and_the_cost_gate_refuses_off_a_terminal(tmp_path):
    result = invoke(tmp_path, str(EXAMPLE), "--max-cost", "0.5")
    assert result.exit_code == 1
    out = result.output
    # run names carry the template's name; cost per run from runtime/contract/cost.py
    assert "sweep-125m-h100-lr0.0003-gb64  train.lr=0.0003, train.global_batch=64  H100!:1  ~3m" in out
    assert "total $0.74, worst case $13.17" in out
    assert ("error: the sweep's estimated cost $0.74 is above --max-cost $0.50; nothing was launched\n"
            "  = help: Pass --yes to launch it anyway, or raise --max-cost") in result.stderr
    assert sweep_dirs(tmp_path) == []


def test_over_the_limit_with_yes_still_needs_modal_credentials(tmp_path, monkeypatch):
    import modal.config

    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setattr(modal.config, "_user_config", {})
    result = invoke(tmp_path, str(EXAMPLE), "--max-cost", "0.5", "--yes")
    assert result.exit_code == 1 and result.stderr.startswith("error: Modal credentials not found")
    assert sweep_dirs(tmp_path) == []


def test_a_folder_without_specs_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke(tmp_path, str(tmp_path / "empty"))
    assert result.exit_code == 1 and "holds no spec files" in result.stderr and "Traceback" not in result.output


def test_apply_a_folder_of_specs_previews_the_settings_on_which_they_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["sweep", str(EXAMPLE)]).exit_code == 0  # writes sweeps/sweep-125m-h100/
    result = invoke(tmp_path, "sweeps/sweep-125m-h100", "--max-cost", "0.5")
    assert result.exit_code == 1 and "above --max-cost $0.50" in result.stderr
    # the folder's name is the sweep's; the swept values are what differs between the specs
    assert result.output.startswith("sweep sweep-125m-h100-")
    assert "sweep-125m-h100-lr0.0001-gb32  train.global_batch=32, train.lr=0.0001  H100!:1" in result.output
    assert "total $0.74, worst case $13.17" in result.output
    assert sweep_dirs(tmp_path) == []
