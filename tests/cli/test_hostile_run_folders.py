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


def queued_modal_sweep(root: Path, app: str, plan_name: str) -> Path:
    """make_sweep's folder turned into a Modal sweep whose first run waits `planned`, with the app path
    and the plan name someone wrote into it."""
    sweep = make_sweep(root)
    data = json.loads((sweep / "sweep.json").read_text())
    data["target"], data["runs"][0]["state"], data["runs"][0]["app"] = "modal", "planned", app
    (sweep / "sweep.json").write_text(json.dumps(data))
    run_dir = sweep / data["runs"][0]["run_dir"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest.update(state="planned", backend="modal", receipt=None, transitions=manifest["transitions"][:1])
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    plan = json.loads((run_dir / "plan.json").read_text())
    (run_dir / "plan.json").write_text(json.dumps({**plan, "name": plan_name}))
    return sweep


@pytest.mark.parametrize(("app", "plan_name"), [("evil.py", "../../../x"), ("gone/app.py", "tiny"), ("evil.py", "tiny")])
def test_status_and_collect_of_a_sweep_never_import_an_app_it_names(tmp_path, app, plan_name):
    """sweep.json names an app outside the project (its import would run it; a missing one was rendered
    beside it) and the plan a folder outside build/: without credentials, status and collect launch
    nothing, render nothing, import nothing."""
    from tests.conftest import run_megaspec

    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "evil.py").write_text(f"open({str(outside / 'ran')!r}, 'w').close()\n")
    sweep = queued_modal_sweep(root, str(outside / app), plan_name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")} | {"HOME": str(tmp_path)}
    for command in ("status", "collect"):
        result = run_megaspec(command, str(sweep), cwd=root, env=env, timeout=120)
        assert result.returncode in (0, 1) and "MS902" not in result.stderr, result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["evil.py"]
    assert not (root / "build").exists() and not (tmp_path / "x").exists()
