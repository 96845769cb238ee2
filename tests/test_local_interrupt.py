"""Stopping a local run: Ctrl-C exits 130 and SIGTERM 143 (128 + the signal, as shells report it),
with one `interrupted` line instead of torch elastic's per-worker shutdown warnings; the receipt and
the manifest name the signal and where each rank was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signalled_local_run_says_so_in_one_line_and_exits_128_plus_the_signal(tmp_path, sig, code):
    megaspec = Path(sys.executable).parent / "megaspec"
    proc = subprocess.Popen([str(megaspec), "apply", str(ROOT / "specs" / "cpu-local.yaml"), "--runs-dir",
                             str(tmp_path / "runs"), "-o", str(tmp_path / "build"), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "runs").glob("*/progress.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)  # training has started: the workers are up
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)  # Ctrl-C reaches the group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert [line for line in err.splitlines() if line.strip()] == [
        f"interrupted: manifest {next((tmp_path / 'runs').glob('*/manifest.json'))}"]
    manifest = json.loads(next((tmp_path / "runs").glob("*/manifest.json")).read_text())
    error = json.loads(next((tmp_path / "runs").glob("*/receipt.json")).read_text())["error"]
    assert manifest["state"] == "interrupted" and (error["code"], error["rank"]) == ("MS809", None)
    said = f"the launcher received {sig.name} and stopped the ranks: rank 0 in `"
    assert error["message"].startswith(said) and ", rank 1 in `" in error["message"]
    assert manifest["notes"][-1] == f"interrupted on this machine: {error['message']}"
