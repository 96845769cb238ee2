"""Hostile run folders through every reader (the small form of benchmarks/hostile_run_folders.py): a file
of the first run replaced by something someone could leave there, then `status`, `collect`, `report`,
`receipts list/show` and `logs` on the sweep. Each answers (never exit 3, never a hang: every special
file here would block or exhaust a reader that opened it plainly), names the run it could not read,
goes on with the others, and prints no terminal control from the folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.safe_text import CONTROLS
from tests.cli.test_report_cli import make_sweep

ESCAPES = "\x1b]0;pwned\x07\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\x9b31m\u202e"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def replace_with(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind.startswith("/"):
        path.symlink_to(kind)
    else:
        path.write_text(kind)


def readers(sweep: Path, run_dir: Path, out: Path) -> dict[str, list[str]]:
    return {"status": ["status", str(sweep)], "collect": ["collect", str(sweep)],
            "report": ["report", str(sweep), "-o", str(out)], "receipts list": ["receipts", "list", str(sweep)],
            "receipts show": ["receipts", "show", str(run_dir)], "logs": ["logs", str(run_dir)]}


def assert_safe(result, command: str) -> None:
    assert result.exit_code != 3 and "MS902" not in result.output, (command, result.output)
    assert not {ord(c) for c in result.output} & set(CONTROLS), (command, result.output)


@pytest.mark.parametrize("file", ["manifest.json", "receipt.json", "plan.json", "progress.jsonl"])
@pytest.mark.parametrize("kinds", [("fifo", "/dev/stdin"), ("/dev/zero", "folder"),
                                   ("[" * 100_000, '{"schema_version": "megaspec.manifest.v2"}'), ("\ufeff[1]", "")])
def test_an_unreadable_file_is_that_runs_problem(tmp_path, file, kinds):
    sweep = make_sweep(tmp_path)
    *hostile, intact = sorted(p for p in sweep.iterdir() if p.is_dir())
    for run_dir, kind in zip(hostile, kinds, strict=True):
        replace_with(run_dir / file, kind)
    for command, args in readers(sweep, hostile[0], tmp_path / "out").items():
        result = run(*args)
        assert_safe(result, command)
        if command in ("status", "receipts list") and file == "manifest.json":
            assert all(f"{d.name}  " in result.output for d in (*hostile, intact)), (command, result.output)
        if command == "report" and file == "manifest.json":
            assert "manifest.json`: " in result.output and result.output.count(" ok ") == 1, result.output


@pytest.mark.parametrize("line", ["5", "null", '"x"', '{"losses": 5}', '{"losses": [[1]]}', "[1e308, -1e308]",
                                  '{"step": 2, "losses": [1e308, -1e308]}'])
def test_progress_lines_of_any_shape_do_not_break_the_report(tmp_path, line):
    sweep = make_sweep(tmp_path)
    for progress in sweep.glob("*/progress.jsonl"):
        progress.write_text(line + "\n")
    result = run("report", str(sweep))
    assert result.exit_code == 0, result.output
    assert (sweep / "report" / "loss.png").is_file()


def test_terminal_controls_in_a_run_folder_are_escaped_everywhere(tmp_path):
    sweep = make_sweep(tmp_path)
    first = sorted(p for p in sweep.iterdir() if p.is_dir())[0]
    receipt = json.loads((first / "receipt.json").read_text())
    receipt["name"] = f"run{ESCAPES}"
    receipt["hardware"]["observed_devices"] = [ESCAPES * 400]  # 20 KB: shown clipped, fast
    (first / "receipt.json").write_text(json.dumps(receipt))
    manifest = json.loads((first / "manifest.json").read_text())
    manifest["notes"] = [ESCAPES]
    (first / "manifest.json").write_text(json.dumps(manifest))
    log = first / "logs" / "x" / "attempt_0" / "0" / "stdout.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"step 1 {ESCAPES}\n")
    for command, args in readers(sweep, first, tmp_path / "out").items():
        assert_safe(run(*args), command)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "\\u001b]0;pwned" in summary and not {ord(c) for c in summary} & set(CONTROLS)
    assert max(len(line) for line in summary.splitlines()) < 2000
