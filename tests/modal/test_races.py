"""Commands run at once on one sweep, in real processes, through the real client and the test server.

A sweep with one free slot, polled by two or three `collect`/`status` processes started at the same
instant: the queued run is launched once, never twice (a second launch would be an app megaspec
keeps no call id of, and cannot cancel). Each try frees the slot by finishing the run in flight
(`finished_calls.txt`: only that call finishes, so a call launched during the try stays pending).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.sweep_manifest import read_sweep
from tests.modal.test_sweep_modal import invoke

TRIES = 20
TEMPLATE = """megaspec: 1
name: race
lane: train
target: modal
resources: {{ranks: 1}}
preset: tiny
train: {{steps: 2, warmup_steps: 1, global_batch: 2, micro_batch: 2, seq_len: 32, precision: fp32, compile: false}}
data: {{source: synthetic}}
sweep:
  matrix:
    train.seed: [{seeds}]
  max_parallel: 1
"""
COMMANDS = {2: ("collect", "status"), 3: ("collect", "status", "collect")}


@pytest.mark.slow
@pytest.mark.parametrize("num_racers", [2, 3])
def test_concurrent_collect_and_status_launch_a_queued_run_once(mock, tmp_path, num_racers):
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE.format(seeds=", ".join(str(i) for i in range(TRIES + 1))))
    applied = invoke("apply", str(template), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"), "--yes")
    assert applied.exit_code == 0, applied.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    mock.set("error.txt", "finished")  # a finished call fails: its run ends `error`, freeing the slot
    racer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("racer.py")), str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        for attempt in range(TRIES):
            in_flight = _in_flight(sweep_dir)
            (call,) = in_flight.values()
            mock.set("finished_calls.txt", call)
            calls_before = len(mock.state()["function_calls"])
            racer.stdin.write(json.dumps([[verb, str(sweep_dir)] for verb in COMMANDS[num_racers]]) + "\n")
            racer.stdin.flush()
            json.loads(racer.stdout.readline())
            now = _in_flight(sweep_dir)
            assert len(now) == 1 and now.keys() != in_flight.keys(), f"try {attempt}: in flight {now}"
            assert len(mock.state()["function_calls"]) == calls_before + 1, f"try {attempt}"
        states = [r.state for r in read_sweep(sweep_dir).runs]
        assert states == ["error"] * TRIES + ["detached"]
    finally:
        racer.stdin.close()
        racer.wait(timeout=60)


def _in_flight(sweep_dir: Path) -> dict[str, str]:
    """run id -> call id of the sweep's runs that are launched and unfinished, from their own manifests."""
    manifests = [mf.read_manifest(p.parent) for p in sweep_dir.glob(f"*/{mf.MANIFEST_FILE}")]
    return {m.run_id: m.modal.function_call_id for m in manifests if m.state in ("detached", "running")}
