"""`megaspec report`: the table grouped by comparison class with the best run marked, summary.csv and
summary.md, and the plots (real matplotlib, Agg) or, without matplotlib, the tables and how to get plots.

The runs are files as a sweep leaves them (sweep.json, manifests, plans, receipts, progress.jsonl);
tests/test_sweep_local.py reports on a sweep that really ran.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.sweep_manifest import SweepManifest, SweepRunEntry, write_sweep
from tests.runtime.conftest import make_plan
from tests.unit.test_manifest import make_manifest, make_receipt

LRS = (1e-3, 3e-3, 1e-2)
FINAL = {1e-3: 5.2, 3e-3: 4.9, 1e-2: 5.6}


def make_sweep(root: Path, *, objective: dict | None = None, lane: str = "train") -> Path:
    sweep_dir = root / "runs" / "s-20260102-030405-abcd"
    entries = []
    for i, lr in enumerate(LRS):
        run_id = f"s-{i}"
        run_dir = sweep_dir / run_id
        mf.write_manifest(run_dir, mf.advance(make_manifest("running", "local").model_copy(update={"run_id": run_id}),
                                              "ok", receipt="receipt.json"))
        (run_dir / "plan.json").write_text(make_plan(train={"lr": lr}, lane=lane).to_json())
        losses = [6.0, 5.5, FINAL[lr]]
        receipt = {**make_receipt(), "run_id": run_id, "name": f"s-lr{lr}", "lane": lane, "losses": losses,
                   "metrics": {"tokens_per_s": 1000.0 * (i + 1), "final_loss": FINAL[lr], "min_loss": FINAL[lr]}}
        (run_dir / "receipt.json").write_text(json.dumps(receipt))
        (run_dir / "progress.jsonl").write_text("".join(  # runtime/contract/progress.py's events, one per step
            json.dumps({"step": s, "loss": v, "losses": [v], "tokens_per_s": 1000.0, "eta_s": 0.0}) + "\n"
            for s, v in enumerate(losses, 1)))
        entries.append(SweepRunEntry(name=f"s-lr{lr}", values={"train.lr": lr}, spec=f"s-{i}.yaml", run_id=run_id,
                                     run_dir=run_id, state="ok"))
    write_sweep(sweep_dir, SweepManifest(sweep_id=sweep_dir.name, source="s.yaml", source_sha256=None,
                                         matrix={"train.lr": list(LRS)}, target="local", objective=objective,
                                         created_at="2026-01-02T03:04:05Z", runs=entries))
    return sweep_dir


def report(*args: str):
    return CliRunner().invoke(cli, ["report", *args], catch_exceptions=False)


def best_rows(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.startswith("  *")]


def test_report_marks_the_lowest_final_loss_and_writes_tables_and_plots(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    result = report(str(sweep_dir))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("class: train, CPU, world 2, 2L d64")
    assert "* best: lowest final loss" in result.stdout and best_rows(result.stdout) == ["s-lr0.003"]
    out = sweep_dir / "report"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["run"], r["train.lr"], r["best"]) for r in rows] == [("s-lr0.001", "0.001", "0"),
                                                                  ("s-lr0.003", "0.003", "1"), ("s-lr0.01", "0.01", "0")]
    assert float(rows[2]["tokens_per_s"]) == 3000.0
    assert "| * | s-lr0.003 | 0.003 | ok |" in (out / "summary.md").read_text()
    for name in ("loss.png", "tokens_per_s.png", "final_loss_vs_train_lr.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_a_sweep_objective_picks_the_best_run(tmp_path):
    sweep_dir = make_sweep(tmp_path, objective={"metric": "tokens_per_s", "goal": "max"})
    result = report(str(sweep_dir), "-o", str(tmp_path / "out"))
    assert "* best: highest tokens/s" in result.stdout and best_rows(result.stdout) == ["s-lr0.01"]
    assert (tmp_path / "out" / "tokens_per_s_vs_train_lr.png").is_file()


def test_without_matplotlib_the_tables_are_written_and_the_message_says_how_to_get_plots(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError, as uninstalled
    sweep_dir = make_sweep(tmp_path)
    result = report(str(sweep_dir))
    assert result.exit_code == 0
    assert "plots: skipped, matplotlib is not installed; `pip install 'megaspec[plots]'` adds them" in result.stdout
    assert sorted(p.name for p in (sweep_dir / "report").iterdir()) == ["summary.csv", "summary.md"]


def test_runs_of_two_classes_are_two_groups_each_with_its_best(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    receipt_path = sweep_dir / "s-2" / "receipt.json"
    receipt = json.loads(receipt_path.read_text())
    receipt_path.write_text(json.dumps({**receipt, "rehearsal": True}))
    result = report(str(sweep_dir))
    assert result.stdout.count("class: ") == 2 and "class: train, REHEARSAL, CPU" in result.stdout
    assert best_rows(result.stdout) == ["s-lr0.003", "s-lr0.01"]
    assert (sweep_dir / "report" / "loss-2.png").is_file()


def test_a_runs_directory_without_a_sweep_shows_the_settings_on_which_its_runs_differ(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    (sweep_dir / "sweep.json").unlink()  # runs launched one by one: no matrix to read the columns from
    receipt_path = sweep_dir / "s-1" / "receipt.json"  # one run without numbers keeps its row, without values
    receipt_path.unlink()
    result = report(str(sweep_dir))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((sweep_dir / "report" / "summary.csv").open()))
    assert [(r["run"], r["train.lr"]) for r in rows if r["class"] != "no receipt"] == [("s-lr0.001", "0.001"),
                                                                                      ("s-lr0.01", "0.01")]
    assert best_rows(result.stdout) == ["s-lr0.001"]


def test_a_run_that_ended_without_a_receipt_says_why_and_an_unreadable_one_is_marked(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    failed = mf.advance(make_manifest("running", "modal").model_copy(update={"run_id": "s-0"}), "error",
                        error=mf.ManifestError(stage="remote", message="RuntimeError: boom\ntraceback..."))
    mf.write_manifest(sweep_dir / "s-0", failed)
    (sweep_dir / "s-0" / "receipt.json").unlink()
    (sweep_dir / "s-1" / "receipt.json").write_text("{")
    result = report(str(sweep_dir))
    assert result.exit_code == 0, result.output
    assert "class: no receipt (1 run(s)" in result.stdout  # named as the sweep names it, with its error
    assert "  s-lr0.001: error[remote]: RuntimeError: boom\n" in result.stdout
    assert "class: unreadable (1 run(s)" in result.stdout and "  s-lr0.003: cannot read `" in result.stdout
    assert best_rows(result.stdout) == ["s-lr0.01"]  # the one run left with numbers


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_a_folder_without_runs_is_a_clear_error(tmp_path, make):
    make(tmp_path / "empty")
    result = report(str(tmp_path / "empty"))
    assert result.exit_code in (1, 2) and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["report"], ["receipts", "compare"], ["status"], ["collect"]])
def test_a_damaged_sweep_manifest_is_an_error_with_help_not_a_traceback(tmp_path, command):
    sweep_dir = make_sweep(tmp_path)
    (sweep_dir / "sweep.json").write_text('{"schema_version": "megaspec.sweep.v1", "runs": 3}')
    result = CliRunner().invoke(cli, [*command, str(sweep_dir)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: cannot read the sweep manifest `{sweep_dir / 'sweep.json'}`")
    assert "= help: It was written by another megaspec version" in result.stderr


def compare(*args: str):
    return CliRunner().invoke(cli, ["receipts", "compare", *args], catch_exceptions=False)


def test_compare_heads_each_column_with_its_run_id_and_its_name_beneath(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    result = compare(str(sweep_dir / "s-0"), str(sweep_dir / "s-2"))
    assert result.exit_code == 0, result.output
    ids, names = result.stdout.splitlines()[2:4]
    assert ids.split() == ["s-0", "s-2"] and names.split() == ["s-lr0.001", "s-lr0.01"]


def test_compare_of_many_runs_prints_one_row_per_run(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    wide = compare("--wide", str(sweep_dir))
    long = compare("--long", str(sweep_dir))
    head, *rows = long.stdout.splitlines()[2:]
    assert head.split()[:4] == ["run", "name", "train.lr", "status"] and len(rows) == 3
    assert [r.split()[:3] for r in rows] == [["s-0", "s-lr0.001", "0.001"], ["s-1", "s-lr0.003", "0.003"],
                                            ["s-2", "s-lr0.01", "0.01"]]
    assert "settings that differ" in wide.stdout and "settings that differ" not in long.stdout


def test_compare_refuses_a_folder_that_holds_no_run_with_the_reason(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["receipts", "compare", str(sweep_dir / "s-0"), str(tmp_path / "empty")])
    assert result.exit_code == 1 and "holds no run: no manifest.json in it or in the folders just under it" \
        in result.output


def test_runs_that_differ_only_in_the_seed_are_replicates_with_mean_std_and_n(tmp_path):
    sweep_dir = make_sweep(tmp_path)
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    for i, run in enumerate(sweep["runs"]):  # two seeds of lr 1e-3 (runs 0, 1), one of lr 1e-2 (run 2)
        run["values"] = {"train.lr": 1e-3 if i < 2 else 1e-2, "train.seed": i}
    sweep["matrix"] = {"train.lr": [1e-3, 1e-2], "train.seed": [0, 1, 2]}
    (sweep_dir / "sweep.json").write_text(json.dumps(sweep))
    result = report(str(sweep_dir), "--x", "tokens")
    assert result.exit_code == 0, result.output
    assert "replicates (runs that differ only in train.seed), mean ± std (n):" in result.stdout
    assert "    train.lr=0.001: final loss 5.0500 ± 0.2121 (n=2), tokens/s 1,500 ± 707 (n=2)" in result.stdout
    out = sweep_dir / "report"
    assert "- train.lr=0.001: final loss 5.0500 ± 0.2121 (n=2)" in (out / "summary.md").read_text()
    from megaspec.compiler.runs.report_table import METRIC_HEADINGS  # units in the columns and plot axes

    assert (METRIC_HEADINGS["step_time_p50_s"], METRIC_HEADINGS["peak_mem_gib"]) == ("step p50 (s)", "peak mem (GiB)")
    assert sorted(p.name for p in out.glob("*.png")) == ["final_loss_vs_train_lr.png", "loss.png",
                                                          "tokens_per_s.png"]  # never `_vs_train_seed`


def test_report_summary_and_compare_head_each_metric_with_its_unit():
    from megaspec.compiler.runs.records import METRICS, metric_heading
    from megaspec.compiler.runs.report_table import METRIC_HEADINGS

    assert [metric_heading(k) for k in ("step_time_p50_s", "peak_mem_gib", "busbw_gbps", "wall_time_s", "mfu_pct")] == [
        "step p50 (s)", "peak mem (GiB)", "bus bw (GB/s)", "wall (s)", "MFU (%)"]
    assert METRIC_HEADINGS == {k: metric_heading(k) for k, _, _ in METRICS}  # report's text, summary.md and plots
