"""Sweeps that resume, for real on this machine: a 6-run local sweep stopped by a real SIGINT to
`megaspec apply` once its second run's receipt is on disk, then `megaspec apply SWEEP_DIR`, ends with
6 ok runs in exactly 6 run folders (the same run ids and names: the 2 ok runs are not run again).
The choice of runs a resume launches is also checked on its own (`to_resume`)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from megaspec.compiler.commands.resume_sweep import to_resume
from megaspec.compiler.runs.sweep_manifest import read_sweep
from megaspec.runtime.contract.receipt import read_receipt
from tests.conftest import MEGASPEC, run_megaspec, tiny_cpu_spec

TEMPLATE = tiny_cpu_spec("six", "sweep:", "  matrix:", "    train.lr: [1.0e-3, 2.0e-3, 3.0e-3]",
                         "    train.seed: [1, 2]", "  name: \"lr{{ matrix['train.lr'] }}-s{{ matrix['train.seed'] }}\"")
STATES = {"a": "ok", "b": "interrupted", "c": "planned", "d": "error", "e": "diverged", "f": "running"}


def test_a_resume_launches_planned_and_interrupted_runs_and_failed_ones_only_when_asked():
    assert to_resume(STATES, retry_failed=False) == ["b", "c"]
    assert to_resume(STATES, retry_failed=True) == ["b", "c", "d"]


def wait_for(found, proc: subprocess.Popen, what: str):
    """Until `found()` is true (an event on disk), or the process ended without it."""
    while not found():
        if proc.poll() is not None:
            raise AssertionError(f"apply ended ({proc.returncode}) before {what}: {proc.stdout.read()}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_sweep_interrupted_after_its_second_run_resumes_to_six_ok_runs_in_six_folders(tmp_path):
    (tmp_path / "six.yaml").write_text(TEMPLATE)
    proc = subprocess.Popen([*MEGASPEC, "apply", "six.yaml", "--no-progress"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    runs = tmp_path / "runs"
    wait_for(lambda: len(list(runs.glob("*/*/receipt.json"))) >= 2, proc, "the second receipt")
    proc.send_signal(signal.SIGINT)  # Ctrl-C, as a terminal sends it
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    (sweep_dir,) = runs.iterdir()
    before = read_sweep(sweep_dir)
    ok_before = {r.run_id: (sweep_dir / r.run_dir / "receipt.json").stat().st_mtime_ns
                 for r in before.runs if r.state == "ok"}
    # The signal lands while the second run ends (its receipt is written before its manifest says ok): it
    # is ok or interrupted; the others are planned, or the third interrupted if it had started.
    assert len(ok_before) >= 1 and all(r.state in ("ok", "interrupted", "planned") for r in before.runs), out
    assert f"`megaspec apply {sweep_dir.relative_to(tmp_path)}` resumes the sweep" in out

    resumed = run_megaspec("apply", str(sweep_dir.relative_to(tmp_path)), "--no-progress", cwd=tmp_path,
                           timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resume sweep {sweep_dir.name}: {6 - len(ok_before)} of 6 run(s) to run; kept as they are: " \
           f"{len(ok_before)} ok" in resumed.stdout
    after = read_sweep(sweep_dir)
    assert [(r.run_id, r.name) for r in after.runs] == [(r.run_id, r.name) for r in before.runs]
    assert [r.state for r in after.runs] == ["ok"] * 6
    assert list(runs.iterdir()) == [sweep_dir]  # no second sweep
    assert sorted(p.parent.name for p in sweep_dir.glob("*/manifest.json")) == sorted(r.run_id for r in after.runs)
    for r in after.runs:
        assert read_receipt(sweep_dir / r.run_dir / "receipt.json").name == r.name  # no doubled prefix
    assert {i: (sweep_dir / i / "receipt.json").stat().st_mtime_ns for i in ok_before} == ok_before  # not run again
    again = run_megaspec("apply", str(sweep_dir), cwd=tmp_path)
    assert again.returncode == 0 and "0 of 6 run(s) to run; kept as they are: 6 ok" in again.stdout
