"""A launch ended by a signal or by the network, through real processes, the real client and the test server.

Each signal that can end a command (Ctrl-C, SIGTERM from a CI job or `kill`, SIGHUP from a closed
terminal) leaves the manifest `interrupted` with the app id; a connection lost mid-launch is neither
of those nor a failure of the run: megaspec lost track of it (stage collector), and says where to look.
The server dying on an RPC (`rpc_die.txt`, `knob_server.py`) is the network lost at that step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from megaspec.compiler.runs import manifest as mf
from tests.modal.test_lifecycle import SPEC

MEGASPEC = str(Path(sys.executable).parent / "megaspec")


def _wait_for(condition, what: str, proc: subprocess.Popen):
    """Until `condition()` is true (each try waits on the server's next state write or a file); the
    process ending first fails the test with its output."""
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"megaspec ended before {what}:\n{proc.communicate()[1]}")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_the_spawn_leaves_the_app_id_and_interrupted(mock, tmp_path, signum):
    spawns_before = mock.state()["rpcs"].count("FunctionMap")
    mock.set("slow_map.txt", "60")  # the server holds the spawn until the signal has been handled
    runs = tmp_path / "runs"
    proc = subprocess.Popen([MEGASPEC, "apply", SPEC, "--target", "modal", "--runs-dir", str(runs), "-o",
                             str(tmp_path / "build")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    try:
        _wait_for(lambda: mock.state()["rpcs"].count("FunctionMap") > spawns_before, "the spawn", proc)
        (manifest,) = runs.glob(f"*/{mf.MANIFEST_FILE}")
        early = mf.read_manifest(manifest.parent)  # the app exists: its id is recorded before the spawn answers
        assert early.state == "planned" and early.modal.app_id.startswith("ap-")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    m = mf.read_manifest(manifest.parent)
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    assert proc.returncode == 128 + signum, err
    assert m.state == "interrupted" and m.modal.app_id == early.modal.app_id and m.modal.function_call_id is None
    assert f"interrupted ({name})" in m.notes[0] and f"`modal app stop {m.modal.app_id}`" in m.notes[0]
    assert m.notes[0] in out and "Traceback" not in err


def test_the_network_lost_during_the_spawn_is_not_a_ctrl_c(own_mock, tmp_path):
    own_mock.set("rpc_die.txt", "FunctionMap")
    runs = tmp_path / "runs"
    proc = subprocess.run([MEGASPEC, "apply", SPEC, "--target", "modal", "--runs-dir", str(runs), "-o",
                           str(tmp_path / "build")], capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    (manifest,) = runs.glob(f"*/{mf.MANIFEST_FILE}")
    m = mf.read_manifest(manifest.parent)
    assert proc.returncode == 1 and m.state == "error" and m.error.stage == "collector", proc.stderr
    assert "connection to Modal was lost during the launch" in m.error.message and "Ctrl-C" not in proc.stdout
    assert f"`modal app logs {m.modal.app_id}`" in m.error.message and m.error.message in proc.stdout
    assert "Traceback" not in proc.stderr and "never retrieved" not in proc.stderr  # the client's noise


def test_the_network_lost_while_a_seed_compiles_says_it_may_still_be_running(own_mock, tmp_path):
    from tests.modal.conftest import stop_server
    from tests.modal.test_seed_modal import project

    proc = subprocess.Popen([MEGASPEC, "cache", "seed", project(tmp_path), "-o", str(tmp_path / "build")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        lines = []
        while not any(line.startswith("waiting for the compile") for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        stop_server(own_mock.process)  # the network is gone while the detached seed compiles
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert "the connection to Modal was lost while waiting" in err and "may still be being made" in err
    assert "Before seeding again, check: `modal app logs ap-" in err and "`seed.json` is in `/vol/cache/seed` on Volume" in err
    assert "the seed was not made" not in err and "Traceback" not in err


def test_a_poll_given_up_on_leaves_no_client_tracebacks(mock, tmp_path):
    """The process exits with the client's poll still waiting: its task ends in ClientClosed, which
    asyncio would print as tracebacks (54 lines) after megaspec's own two."""
    from tests.modal.test_lifecycle import apply_modal

    applied, run_dir = apply_modal(tmp_path)
    assert applied.exit_code == 0, applied.output
    mock.set("rpc_hang.txt", "FunctionGetOutputs")
    bounded = ("from megaspec.compiler.runs import refresh; refresh.POLL_TIMEOUT_S = 0.5; "  # 20 s in use
               "from megaspec.compiler.cli import main; import sys; main(sys.argv[1:])")
    proc = subprocess.run([sys.executable, "-c", bounded, "collect", str(run_dir)], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "did not answer within" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
