"""`megaspec sweep`: matrix expansion semantics, and run files that lint, compile and stand alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.spec.expand import _dump, _set_path, combinations, run_texts
from megaspec.compiler.spec.source import load_source
from tests.conftest import REPO_ROOT, tiny_cpu_spec

EXAMPLE = REPO_ROOT / "examples" / "sweeps" / "lr-batch-sweep.yaml"

TEMPLATE = tiny_cpu_spec("tiny-sweep", "sweep:", "  matrix:", "    train.global_batch: [4, 8]",
                         "    train.micro_batch: [1, 2]",
                         "  name: \"{{ name }}-gb{{ matrix['train.global_batch'] }}-mb{{ matrix['train.micro_batch'] }}\"")


def test_combinations_product_exclude_include_in_written_order():
    matrix = {"a": [1, 2], "b": ["x", "y"]}
    got = combinations(matrix, include=[{"a": 3, "b": "x"}, {"a": 1, "b": "x"}], exclude=[{"b": "y", "a": 2}])
    assert got == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 3, "b": "x"}]


def test_exclude_matches_on_its_keys_only_and_by_type():
    matrix = {"flag": [True, False], "n": [1, 2]}
    assert combinations(matrix, [], [{"n": 1}]) == [{"flag": True, "n": 2}, {"flag": False, "n": 2}]
    assert len(combinations(matrix, [], [{"flag": 1}])) == 4  # `1` is not `true`


def test_set_path_copies_what_it_changes():
    template = {"train": {"lr": 1.0, "steps": 3}}
    run = {**template}
    _set_path(run, "train.lr", 2.0)
    _set_path(run, "buckets.corpus.prefix", "p/")
    assert template == {"train": {"lr": 1.0, "steps": 3}}
    assert run == {"train": {"lr": 2.0, "steps": 3}, "buckets": {"corpus": {"prefix": "p/"}}}


@pytest.fixture
def runner(monkeypatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_run_texts_are_each_runs_whole_dump_with_shared_entries_dumped_once():
    """`write_runs` dumps each distinct top-level entry once, in one stream; the text must be what
    dumping each run whole gives, for values YAML writes in every style (quoted, folded, literal
    with kept newlines, empty, nested lists) and for a run that holds one list twice (an anchor)."""
    shared = {"python": "3.11", "packages": ["torch==2.8.0", "a b " * 30]}
    odd = ["x\n\n", "", "- x", "#x", "...", "---", "yes", "0o17", "é " * 50, "line1\nline2", "tab\there", None, -0.0,
           1e-300, float("inf"), True, 1, 1.0]
    runs = [{"megaspec": 1, "name": f"s-{i:03d}", "image": shared, "train": {"lr": value, "nested": [value, {"k": value}]}}
            for i, value in enumerate(odd)]
    twice = ["a", "b"]  # under two top-level keys: dumped apart, each would lose the anchor
    runs.append({"megaspec": 1, "name": "s-anchor", "image": {"packages": twice}, "train": {"a": twice}})
    texts = run_texts(runs)
    assert texts == [_dump(run) for run in runs]
    assert "&id001" in texts[-1]  # the run with one list twice keeps YAML's anchor


def test_example_expands_into_standalone_specs_that_lint_and_compile(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(cli, ["sweep", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "sweeps" / "sweep-125m-h100"
    # 1e-4 x 64 is excluded; each name carries the template's, as `apply TEMPLATE` names the runs
    assert sorted(p.name for p in out.glob("*.yaml")) == ["sweep-125m-h100-lr0.0001-gb32.yaml",
                                                         "sweep-125m-h100-lr0.0003-gb32.yaml",
                                                         "sweep-125m-h100-lr0.0003-gb64.yaml"]
    run = load_source(out / "sweep-125m-h100-lr0.0003-gb64.yaml")
    assert not run.diagnostics
    assert run.data["name"] == "sweep-125m-h100-lr0.0003-gb64" and "extends" not in run.data and "sweep" not in run.data
    assert run.data["train"]["lr"] == 3.0e-4 and run.data["train"]["global_batch"] == 64
    assert run.data["train"]["steps"] == 200  # the template's own value
    assert run.data["volumes"]["cache"]["name"] == "ms-compile-cache"  # folded in from the base file
    assert run.data["preset"] == "dense-125m" and "model" not in run.data  # the preset stays a name
    assert list(run.data)[:3] == ["megaspec", "name", "lane"]
    compiled = runner.invoke(cli, ["compile", str(out), "-o", str(tmp_path / "build")])
    assert compiled.exit_code == 0, compiled.output
    assert compiled.output.count(": wrote ") == 3


def test_dry_run_lists_runs_and_writes_nothing(runner: CliRunner, tmp_path: Path):
    result = runner.invoke(cli, ["sweep", str(EXAMPLE), "--dry-run"])
    assert result.exit_code == 0, result.output
    # the apply preview's table: the same run names (the template's name in front), columns aligned
    assert result.output.splitlines()[:4] == [
        "  #  run                            swept values                            GPU      est. time  est. cost  $/h",
        "  1  sweep-125m-h100-lr0.0001-gb32  train.lr=0.0001, train.global_batch=32  H100!:1  ~3m        $0.24      $4.39",
        "  2  sweep-125m-h100-lr0.0003-gb32  train.lr=0.0003, train.global_batch=32  H100!:1  ~3m        $0.24      $4.39",
        "  3  sweep-125m-h100-lr0.0003-gb64  train.lr=0.0003, train.global_batch=64  H100!:1  ~3m        $0.26      $4.39"]
    # runtime/contract/cost.py's estimate of each run, summed; the worst case is every attempt hitting its timeout
    assert ("  total $0.74, worst case $13.17 (every attempt to its timeout; Modal list prices as of 2026-05-25)\n"
            "3 run(s); nothing written (--dry-run)") in result.output
    assert not (tmp_path / "sweeps").exists()


def test_a_combination_that_breaks_a_rule_fails_in_its_run_file(runner: CliRunner, tmp_path: Path):
    (tmp_path / "t.yaml").write_text(TEMPLATE.replace("train.micro_batch: [1, 2]", "train.micro_batch: [1, 3]"))
    result = runner.invoke(cli, ["sweep", "t.yaml", "-o", "runs"])
    assert result.exit_code == 1
    assert "runs/tiny-sweep-gb4-mb3.yaml:12:17: error[MS202]" in result.output  # 2 ranks x 3 > 4
    assert "runs/tiny-sweep-gb8-mb3.yaml:12:17: error[MS201]" in result.output  # 8 is not a multiple of 6
    assert "2 have errors" in result.output
    assert len(list((tmp_path / "runs").glob("*.yaml"))) == 4


def test_reexpanding_removes_runs_the_template_no_longer_has(runner: CliRunner, tmp_path: Path):
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine.yaml").write_text("megaspec: 1\nname: mine\n")  # not generated: kept
    assert runner.invoke(cli, ["sweep", "t.yaml", "-o", "runs"]).exit_code == 0
    assert len(list((tmp_path / "runs").glob("tiny-sweep-*.yaml"))) == 4
    (tmp_path / "t.yaml").write_text(TEMPLATE.replace("[4, 8]", "[4]"))
    result = runner.invoke(cli, ["sweep", "t.yaml", "-o", "runs"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "runs").glob("*.yaml")) == [
        "mine.yaml", "tiny-sweep-gb4-mb1.yaml", "tiny-sweep-gb4-mb2.yaml"]
    assert "removed runs/tiny-sweep-gb8-mb1.yaml" in result.output


def test_a_template_with_errors_or_without_a_sweep_is_refused(runner: CliRunner, tmp_path: Path):
    (tmp_path / "dup.yaml").write_text(TEMPLATE.replace("-mb{{ matrix['train.micro_batch'] }}", ""))
    result = runner.invoke(cli, ["sweep", "dup.yaml"])
    assert result.exit_code == 1 and "error[MS504]" in result.output and not (tmp_path / "sweeps").exists()
    (tmp_path / "single.yaml").write_text(TEMPLATE.split("sweep:")[0])
    result = runner.invoke(cli, ["sweep", "single.yaml"])
    assert result.exit_code == 2 and "has no `sweep:` block" in result.output


def test_sweep_max_parallel_and_objective_are_checked(runner: CliRunner, tmp_path: Path):
    ok = TEMPLATE + "  max_parallel: 2\n  objective: {metric: tokens_per_s, goal: max}\n"
    (tmp_path / "ok.yaml").write_text(ok)
    assert runner.invoke(cli, ["lint", "ok.yaml"]).exit_code == 0
    bad = TEMPLATE + "  max_parallel: 0\n  objective: {metric: speed, goal: max}\n"
    (tmp_path / "bad.yaml").write_text(bad)
    result = runner.invoke(cli, ["lint", "bad.yaml", "--format", "concise"])
    assert result.exit_code == 1
    assert "sweep.max_parallel" in result.output and "sweep.objective.metric" in result.output
