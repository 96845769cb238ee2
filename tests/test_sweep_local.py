"""The experiment loop on this machine, for real: `apply` of a four-run template (tiny preset, two CPU
ranks, four steps each) ends with four receipts and a sweep manifest; `compare` shows the swept
settings as the difference and refuses a rehearsal; `report` writes the table and the plots."""

from __future__ import annotations

from pathlib import Path

import pytest

from megaspec.compiler.runs.sweep_manifest import read_sweep
from megaspec.runtime.contract.plan import read_plan
from megaspec.runtime.contract.receipt import read_receipt
from tests.conftest import run_megaspec, tiny_cpu_spec
from tests.test_local_apply import H100X2_SPEC

pytestmark = pytest.mark.slow

TEMPLATE = tiny_cpu_spec("tiny-lr", "sweep:", "  matrix:", "    train.lr: [1.0e-3, 3.0e-3]",
                         "    train.global_batch: [8, 16]",
                         "  name: \"lr{{ matrix['train.lr'] }}-gb{{ matrix['train.global_batch'] }}\"",
                         train="lr: 1.0e-3")


def megaspec(*args: str, cwd: Path):
    return run_megaspec(*args, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """One sweep and one rehearsal, shared by the tests below (five short runs in all)."""
    work = tmp_path_factory.mktemp("loop")
    (work / "tiny-lr.yaml").write_text(TEMPLATE)
    (work / "h100x2.yaml").write_text(H100X2_SPEC)
    applied = megaspec("apply", "tiny-lr.yaml", "--no-progress", cwd=work)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    rehearsal = megaspec("apply", "h100x2.yaml", "--target", "local", "--steps", "4", "--no-progress",
                         "--runs-dir", "other", cwd=work)
    assert rehearsal.returncode == 0, rehearsal.stdout + rehearsal.stderr
    (sweep_dir,) = (work / "runs").iterdir()
    (rehearsal_dir,) = (work / "other").iterdir()
    return work, sweep_dir, rehearsal_dir, applied.stdout


def test_apply_template_ends_with_four_receipts_and_a_sweep_manifest(loop):
    work, sweep_dir, _, out = loop
    sweep = read_sweep(sweep_dir)
    assert sweep.sweep_id == sweep_dir.name and sweep_dir.name.startswith("tiny-lr-")
    assert sweep.source == "tiny-lr.yaml" and len(sweep.source_sha256) == 64
    assert sweep.matrix == {"train.lr": [1e-3, 3e-3], "train.global_batch": [8, 16]}
    assert [r.values for r in sweep.runs] == [{"train.lr": lr, "train.global_batch": gb}
                                              for lr in (1e-3, 3e-3) for gb in (8, 16)]
    assert [r.state for r in sweep.runs] == ["ok"] * 4
    for run in sweep.runs:
        assert run.name.startswith("tiny-lr-") and run.run_id.startswith("tiny-lr-")  # the template's name
        receipt = read_receipt(sweep_dir / run.run_dir / "receipt.json")
        assert receipt.status == "ok" and receipt.name == run.name and receipt.cost.usd == 0
        assert (work / run.spec).is_file()
        assert read_plan(sweep_dir / run.run_dir / "plan.json").run.sweep_id == sweep.sweep_id  # the W&B group
    assert "[4/4] tiny-lr-lr0.003-gb16" in out and "sweep " + sweep_dir.name + ": 4 ok" in out


def test_compare_shows_the_swept_settings_as_the_difference(loop):
    work, sweep_dir, _, _ = loop
    runs = [sweep_dir / r.run_dir for r in read_sweep(sweep_dir).runs]
    result = megaspec("receipts", "compare", str(runs[0]), str(runs[3]), cwd=work)
    assert result.returncode == 0, result.stderr
    settings = result.stdout.split("settings that differ\n")[1].split("metrics\n")[0]
    keys = [line.split()[0] for line in settings.splitlines()]
    assert keys == ["train.global_batch", "train.grad_accum", "train.lr"]  # grad_accum follows the batch
    assert "tokens/s" in result.stdout and "final loss" in result.stdout and "$/Mtok" in result.stdout


def test_compare_refuses_a_rehearsal_and_force_shows_it_marked(loop):
    work, sweep_dir, rehearsal_dir, _ = loop
    run = sweep_dir / read_sweep(sweep_dir).runs[0].run_dir
    refused = megaspec("receipts", "compare", str(run), str(rehearsal_dir), cwd=work)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("error: these runs are of different comparison classes: rehearsal is `False`")
    forced = megaspec("receipts", "compare", str(run), str(rehearsal_dir), "--force", cwd=work)
    assert forced.returncode == 0 and "! rehearsal" in forced.stdout and "DIFFERENT" in forced.stdout


def test_report_writes_the_table_and_the_plots(loop):
    work, sweep_dir, _, _ = loop
    result = megaspec("report", str(sweep_dir), cwd=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("class: ") == 1 and "* best: lowest final loss" in result.stdout
    assert sum(line.startswith("  *") for line in result.stdout.splitlines()) == 1
    out = sweep_dir / "report"
    assert len((out / "summary.csv").read_text().splitlines()) == 5  # a header and four runs
    for name in ("summary.md", "loss.png", "tokens_per_s.png", "final_loss_vs_train_lr.png",
                 "final_loss_vs_train_global_batch.png"):
        assert (out / name).is_file(), name
