"""The validation loss (`train.eval`) where people read runs: `report` (a `val loss` column, the
objective `val_loss`, the dashed curve beside the training loss), `receipts compare`, `receipts show`
and the end-of-run summary; from the receipt, else from the `eval` events of `progress.jsonl`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs.records import load_run, metric_values, val_curve
from megaspec.compiler.runs.report_table import build_report
from megaspec.runtime.contract.receipt import read_receipt
from tests.cli.test_report_cli import LRS, make_sweep
from tests.runtime.conftest import make_plan

VAL = {1e-3: 5.0, 3e-3: 5.3, 1e-2: 5.1}  # the lowest final loss (3e-3) is not the lowest validation loss


def with_evals(sweep_dir: Path) -> list[Path]:
    runs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    for run_dir, lr in zip(runs, LRS, strict=True):
        receipt = json.loads((run_dir / "receipt.json").read_text())
        receipt["eval"] = [{"step": 2, "loss": VAL[lr] + 0.5}, {"step": 3, "loss": VAL[lr]}]
        (run_dir / "receipt.json").write_text(json.dumps(receipt))
    return runs


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_report_shows_val_loss_and_ranks_by_it(tmp_path):
    sweep_dir = make_sweep(tmp_path, objective={"metric": "val_loss", "goal": "min"})
    with_evals(sweep_dir)
    result = invoke("report", str(sweep_dir))
    assert result.exit_code == 0, result.output
    assert "val loss" in result.output and "best: lowest val loss" in result.output
    [best] = [line.split()[1] for line in result.output.splitlines() if line.startswith("  *")]
    assert best == "s-lr0.001"
    with open(sweep_dir / "report" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_loss"]) for r in rows] == [VAL[lr] for lr in LRS]


def test_the_loss_plot_draws_each_runs_validation_curve_beside_its_training_curve(tmp_path):
    from megaspec.compiler.runs import report_plots

    sweep_dir = make_sweep(tmp_path)
    with_evals(sweep_dir)
    report = build_report(sweep_dir)
    [(label, rows)] = report.groups.items()
    fig = report_plots._loss(report_plots._pyplot(), label, rows)
    lines = fig.axes[0].lines
    assert len(lines) == 2 * len(LRS)
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in dashed] == [[VAL[lr] + 0.5, VAL[lr]] for lr in LRS]
    assert all(d.get_color() == t.get_color() for t, d in zip(lines[::2], lines[1::2], strict=True))


def test_receipts_compare_and_show_name_the_validation_loss(tmp_path):
    runs = with_evals(make_sweep(tmp_path))
    compared = invoke("receipts", "compare", str(runs[0]), str(runs[1]))
    assert compared.exit_code == 0, compared.output
    [row] = [line for line in compared.output.splitlines() if line.strip().startswith("val loss")]
    assert "5.0000" in row and "5.3000" in row
    shown = invoke("receipts", "show", str(runs[0]))
    assert "val loss          5.5000 @ 2, 5.0000 @ 3" in shown.output
    from megaspec.compiler.runs.receipt_view import format_summary

    assert "val loss 5.0000" in format_summary(read_receipt(runs[0] / "receipt.json"), "r.json")


def test_a_receipt_without_evals_reads_them_from_progress_jsonl(tmp_path):
    [run_dir, *_] = sorted(p for p in make_sweep(tmp_path).iterdir() if p.is_dir())
    (run_dir / "plan.json").write_text(make_plan(train={"eval": {"every": 2, "batches": 1}},
                                                     data={"source": "shards", "path": "/vol/data/x"}).to_json())
    with open(run_dir / "progress.jsonl", "a") as f:
        f.write(json.dumps({"eval": {"step": 2, "loss": 4.5}}) + "\n")
    record = load_run(run_dir)
    assert val_curve(record) == [(2, 4.5)] and metric_values(record)["val_loss"] == 4.5


def test_receipts_show_names_a_prepared_folders_tokenizer_and_splits(tmp_path):
    [run_dir, *_] = sorted(p for p in make_sweep(tmp_path).iterdir() if p.is_dir())
    receipt = json.loads((run_dir / "receipt.json").read_text())
    receipt["data"] = {"source": "shards", "path_class": "local-disk", "path": "/data/corpus", "num_files": 2,
                       "num_tokens": 1_000_000, "tokenizer": "tok.json", "tokenizer_sha256": "ab" * 32,
                       "corpus_sha256": "cd" * 32, "val_num_files": 1, "val_num_tokens": 5_000}
    (run_dir / "receipt.json").write_text(json.dumps(receipt))
    shown = invoke("receipts", "show", str(run_dir)).output
    assert "tokenizer         tok.json sha256 abababababab; corpus sha256 cdcdcdcdcdcd" in shown
    assert "splits            train/ 1,000,000 tokens in 2 file(s); val/ 5,000 tokens in 1 file(s)" in shown
