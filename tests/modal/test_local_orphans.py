"""A local run whose process was killed (SIGKILL leaves no last manifest) ends `error` on status/collect."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.local_process import this_process
from tests.unit.test_manifest import make_manifest


def local_run(run_dir, process: mf.LocalProcess):
    m = mf.advance(make_manifest("planned", "local"), "running", process=process)
    mf.write_manifest(run_dir, m)
    (run_dir / "progress.jsonl").write_text('{"step": 1}\n{"step": 2}\n{"ste')  # cut short by the kill
    (run_dir / "ranks").mkdir()
    (run_dir / "ranks" / "rank-0.json").write_text(json.dumps({"rank": 0, "phase": "train", "last_step": 2}))
    return run_dir


def killed_process() -> mf.LocalProcess:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process = mf.LocalProcess(pid=proc.pid, host=socket.gethostname(), started_at=None)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return process


def test_a_killed_local_run_ends_error_orphaned_keeping_what_it_recorded(tmp_path):
    run_dir = local_run(tmp_path / "runs" / "tiny-cpu-20260102-030405-abcd", killed_process())
    result = CliRunner().invoke(cli, ["status", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "error[remote]: orphaned" in result.output  # status exits 1 for a run in error
    m = mf.read_manifest(run_dir)
    assert m.state == "error" and m.completed_at
    assert "last step recorded: 2; rank 0 in `train` at step 2" in m.error.message
    result = CliRunner().invoke(cli, ["collect", str(run_dir)])
    assert result.exit_code == 1 and "orphaned" in result.output
    assert "the run's processes ended without a receipt: read `megaspec logs RUN`" in result.output


def test_a_live_local_run_is_left_running(tmp_path):
    run_dir = local_run(tmp_path / "run", this_process())
    result = CliRunner().invoke(cli, ["collect", str(run_dir)])
    assert result.exit_code == 0 and f"still running as pid {os.getpid()}" in result.output
    assert mf.read_manifest(run_dir).state == "running"


def test_a_reused_pid_is_not_mistaken_for_the_run(tmp_path):
    me = this_process()
    reused = me.model_copy(update={"started_at": me.started_at - 3600})  # same pid, started an hour earlier
    run_dir = local_run(tmp_path / "run", reused)
    CliRunner().invoke(cli, ["status", str(run_dir)])
    assert mf.read_manifest(run_dir).state == "error"


def test_status_of_a_runs_directory_includes_the_runs_of_its_sweeps(tmp_path):
    from megaspec.compiler.runs.refresh import run_dirs

    plain, swept = tmp_path / "a-run", tmp_path / "sweep-1" / "b-run"
    for run_dir, launched in ((plain, "2026-01-02T00:00:00Z"), (swept, "2026-01-01T00:00:00Z")):
        mf.write_manifest(run_dir, make_manifest("ok").model_copy(update={
            "transitions": [mf.Transition(state="ok", at=launched)]}))
    (tmp_path / "sweep-1" / "sweep.json").write_text("{}")
    (tmp_path / "not-a-sweep" / "c-run").mkdir(parents=True)
    mf.write_manifest(tmp_path / "not-a-sweep" / "c-run", make_manifest("ok"))
    assert run_dirs(tmp_path) == [swept, plain]
