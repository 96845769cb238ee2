"""`megaspec cancel runs/<local run>` without the modal extra: the launcher is signalled as Ctrl-C (or
`kill`) would, and the run ends `interrupted` with its receipt. Each megaspec here runs in a process
where `import modal` fails (sys.modules['modal'] = None), as where `megaspec[modal]` is not installed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.local_cancel import _signal
from tests.conftest import REPO_ROOT
from tests.modal.test_local_orphans import killed_process, local_run

WITHOUT_MODAL = (sys.executable, "-c", "import sys; sys.modules['modal'] = None\n"
                                       "from megaspec.compiler.cli import main; main()")
# Says which signal reached it, then exits: a stand-in for the launcher's handlers.
SIGNAL_REPORTER = ("import signal, sys, time\n"
                   "def said(sig, _):\n    print(signal.Signals(sig).name, flush=True); sys.exit(0)\n"
                   "signal.signal(signal.SIGINT, said); signal.signal(signal.SIGTERM, said)\n"
                   "print('ready', flush=True); time.sleep(600)\n")


def megaspec_without_modal(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*WITHOUT_MODAL, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("own_group", "expected"), [(True, "SIGINT"), (False, "SIGTERM")])
def test_a_group_leader_gets_ctrl_c_and_a_launcher_in_its_callers_group_gets_sigterm_alone(own_group, expected):
    proc = subprocess.Popen([sys.executable, "-c", SIGNAL_REPORTER], stdout=subprocess.PIPE, text=True,
                            start_new_session=own_group)
    try:
        assert proc.stdout.readline().strip() == "ready"  # its handlers are installed: an event, not a timer
        assert _signal(proc.pid).startswith(expected)
        assert proc.stdout.readline().strip() == expected and proc.wait(timeout=60) == 0
    finally:
        proc.kill()


def test_an_ended_or_orphaned_local_run_is_said_and_left_without_modal(tmp_path: Path):
    run_dir = local_run(tmp_path / "runs" / "tiny-cpu-20260102-030405-abcd", killed_process())
    result = megaspec_without_modal("cancel", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tiny-cpu-20260102-030405-abcd already ended `error`; nothing to cancel\n"
    assert mf.read_manifest(run_dir).error.message.startswith("orphaned")


def test_a_local_run_on_another_host_is_refused_with_where_to_cancel_it(tmp_path: Path):
    away = mf.LocalProcess(pid=1, host=socket.gethostname() + "-elsewhere", started_at=None)
    run_dir = local_run(tmp_path / "runs" / "tiny-cpu-20260102-030405-abcd", away)
    result = megaspec_without_modal("cancel", str(run_dir), cwd=tmp_path)
    assert result.returncode == 1 and "runs on host" in result.stderr and "Traceback" not in result.stderr
    assert mf.read_manifest(run_dir).state == "running"


@pytest.mark.slow
def test_cancel_stops_a_running_local_run_interrupted_without_modal(tmp_path: Path):
    apply = subprocess.Popen([*WITHOUT_MODAL, "apply", str(REPO_ROOT / "specs" / "cpu-local.yaml"), "--steps", "10000",
                              "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "build"), "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        while not list((tmp_path / "runs").glob("*/progress.jsonl")):  # training has started: the file appears
            assert apply.poll() is None, apply.communicate()
            time.sleep(0.1)
        [run_dir] = (tmp_path / "runs").iterdir()
        result = megaspec_without_modal("cancel", str(run_dir), cwd=tmp_path)
        _, err = apply.communicate(timeout=120)
    finally:
        apply.kill()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"cancelled {run_dir.name}: sent SIGINT to its process group {apply.pid}")
    assert result.stdout.endswith("state: interrupted\n") and apply.returncode == 130, err
    receipt = json.loads((run_dir / "receipt.json").read_text())
    assert receipt["status"] == "interrupted" and receipt["error"]["code"] == "MS809"
