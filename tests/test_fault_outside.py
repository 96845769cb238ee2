"""Faults from outside the ranks, injected from outside the process: real signals to the launcher
(`megaspec apply`), the fork server and the ranks; a second launcher in the same run folder. Each
test waits for an event (a file appears, a process ends), never for a time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from megaspec.compiler.runs.manifest import read_manifest
from megaspec.runtime.contract.claim import claim
from megaspec.runtime.contract.receipt import read_receipt
from megaspec.runtime.contract.rundir import LAUNCHER_CLAIM
from megaspec.runtime.launch.lifeline import LAUNCHER_PID_VAR
from tests.conftest import MEGASPEC, REPO_ROOT, run_megaspec

pytestmark = pytest.mark.slow
EVENT_DEADLINE_S = 300  # only a hang reaches it: every wait ends on an event


def ckpt_spec(tmp_path: Path, every: int = 3) -> Path:
    spec = tmp_path / "ckpt.yaml"
    spec.write_text((REPO_ROOT / "specs" / "cpu-local.yaml").read_text() + f"checkpoint:\n  every: {every}\n")
    return spec


def start_apply(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([*MEGASPEC, "apply", *args, "--runs-dir", str(tmp_path / "runs"), "--out",
                             str(tmp_path / "build"), "--no-progress"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env={**os.environ, **(env or {})})


def wait_for(found: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + EVENT_DEADLINE_S
    while not (value := found()):
        if time.monotonic() > deadline:  # a hang guard: only a hang reaches it
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)
    return value


def run_dir_of(tmp_path: Path) -> Path:
    return wait_for(lambda: next((tmp_path / "runs").glob("*/manifest.json"), None), "a manifest").parent


def processes_of(launcher: int) -> list[str]:
    """Every process that names `launcher` as its run's launcher (the fork server and the ranks)."""
    mark = f"{LAUNCHER_PID_VAR}={launcher}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark in environ.read_bytes().split(b"\0"):
                found.append(f"{environ.parent.name}: {(environ.parent / 'cmdline').read_bytes()[:80]!r}")
        except OSError:
            continue
    return found


def trained_a_step(tmp_path: Path) -> Path:
    return wait_for(lambda: next((tmp_path / "runs").glob("*/progress.jsonl"), None), "a step").parent


def test_a_sigkilled_launcher_leaves_nothing_running_and_status_says_what_happened(tmp_path):
    proc = start_apply(tmp_path, str(ckpt_spec(tmp_path)), "--steps", "400")
    run_dir = trained_a_step(tmp_path)
    assert len(processes_of(proc.pid)) >= 3  # the fork server and two ranks: the mark finds them
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=EVENT_DEADLINE_S)
    wait_for(lambda: not processes_of(proc.pid), "the fork server and the ranks ended with the launcher")
    status = run_megaspec("status", str(tmp_path / "runs"))
    manifest = read_manifest(run_dir)
    assert status.returncode == 1 and "orphaned" in status.stdout, status.stdout + status.stderr  # 1: an error
    assert manifest.state == "error" and "orphaned" in manifest.error.message
    assert "ranks ended with it" in manifest.error.message
    assert not (run_dir / "receipt.json").exists()  # no rank trained on to an `ok` receipt


def test_a_second_launcher_in_a_run_folder_is_refused_with_the_holders_pid(tmp_path):
    first = start_apply(tmp_path, str(ckpt_spec(tmp_path)), "--steps", "6")
    assert first.wait(timeout=EVENT_DEADLINE_S) == 0, first.stderr.read()
    run_dir = run_dir_of(tmp_path)
    with claim(run_dir / LAUNCHER_CLAIM):  # this test's process stands in for a launcher still training there
        second = run_megaspec("apply", str(ckpt_spec(tmp_path)), "--steps", "6", "--resume", str(run_dir),
                              "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "build"))
    assert second.returncode == 1, second.stdout + second.stderr
    assert f"its launcher (pid {os.getpid()}) still trains in it" in second.stderr
    assert read_manifest(run_dir).state == "ok"  # untouched


def apply_to_end(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_megaspec("apply", *args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "build"),
                        "--no-progress", env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def killed_at_step_8(tmp_path_factory) -> tuple[Path, Path, list[float]]:
    """(spec, a run killed at step 8 with checkpoints step-3 and step-6, the uninterrupted run's losses)."""
    tmp = tmp_path_factory.mktemp("ckpt")
    spec = ckpt_spec(tmp)
    whole = apply_to_end(tmp / "whole", str(spec), "--steps", "9")
    assert whole.returncode == 0, whole.stderr
    losses = read_receipt(next((tmp / "whole" / "runs").glob("*/receipt.json"))).losses
    killed = apply_to_end(tmp / "killed", str(spec), "--steps", "9", env={"MEGASPEC_FAULT": "1:train:8:kill"})
    assert killed.returncode == 1, killed.stderr
    return spec, next((tmp / "killed" / "runs").iterdir()), losses


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


DAMAGE = {
    "flipped bytes in a shard": lambda step: _flip_bytes(next(step.glob("*.distcp"))),
    "a truncated shard": lambda step: os.truncate(next(step.glob("*.distcp")), 100),
    "a damaged .metadata": lambda step: _flip_bytes(step / ".metadata"),
    "a deleted shard": lambda step: next(step.glob("*.distcp")).unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_falls_back_to_the_newest_intact_one_and_says_so(tmp_path, killed_at_step_8, damage):
    spec, killed, whole_losses = killed_at_step_8
    run_dir = tmp_path / killed.name
    shutil.copytree(killed, run_dir)
    DAMAGE[damage](run_dir / "checkpoints" / "step-6")
    leftovers = [run_dir / "checkpoints" / ".tmp-step-9", run_dir / ".receipt.json.x1y2.tmp"]  # a kill mid-write
    leftovers[0].mkdir()
    leftovers[1].write_text("{")
    resumed = apply_to_end(tmp_path, str(spec), "--steps", "9", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    receipt = read_receipt(run_dir / "receipt.json")
    assert (receipt.steps.resumed_from, receipt.checkpoint.resumed_from) == (3, 3)
    assert len(receipt.checkpoint.skipped) == 1 and receipt.checkpoint.skipped[0].startswith("step-6: ")
    assert "checkpoint passed over: step-6: " in resumed.stdout
    assert not any(path.exists() for path in leftovers)  # removed when the run folder was next used
    assert receipt.losses == whole_losses  # bit-identical to the uninterrupted run


def test_resume_of_an_interrupted_run_continues_and_of_an_ok_run_is_refused(tmp_path, killed_at_step_8):
    spec, _, whole_losses = killed_at_step_8
    proc = start_apply(tmp_path, str(spec), "--steps", "9", env={"MEGASPEC_FAULT": "1:train:8:sleep"})
    run_dir = wait_for(lambda: next((tmp_path / "runs").glob("*/checkpoints/step-6/.metadata"), None),
                       "checkpoint step-6").parent.parent.parent
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=EVENT_DEADLINE_S) == 143
    assert read_manifest(run_dir).state == "interrupted"
    archived = (run_dir / "manifest.json").read_bytes()
    resumed = apply_to_end(tmp_path, str(spec), "--steps", "9", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_receipt(run_dir / "receipt.json").losses == whole_losses
    assert (run_dir / "attempts" / "1" / "manifest.json").read_bytes() == archived  # never rewritten
    again = apply_to_end(tmp_path, str(spec), "--steps", "9", "--resume", str(run_dir))
    assert again.returncode == 1 and "ended ok: all 9 steps ran; there is nothing to resume" in again.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_as_soon_as_the_run_folder_exists_ends_it_interrupted(tmp_path, sig, code):
    """The manifest appears before the fork server starts: the signal lands while apply prepares."""
    proc = start_apply(tmp_path, str(REPO_ROOT / "specs" / "cpu-local.yaml"))
    run_dir = run_dir_of(tmp_path)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=EVENT_DEADLINE_S)
    assert proc.returncode == code, err
    manifest = read_manifest(run_dir)
    assert manifest.state == "interrupted" and f"received {sig.name}" in manifest.notes[-1], manifest.notes
    assert "Aborted" not in err and err.strip().splitlines()[-1] == f"interrupted: manifest {run_dir / 'manifest.json'}"
    # announced once its manifest exists, unless the signal landed between the two (never the other way)
    assert out == "" or out.splitlines()[0].startswith(f"apply: tiny-cpu -> {run_dir} "), out
    wait_for(lambda: not processes_of(proc.pid), "nothing of the run left running")


def test_a_modal_spec_without_the_client_announces_no_folder(tmp_path):
    spec = tmp_path / "modal.yaml"
    spec.write_text((REPO_ROOT / "specs" / "cpu-local.yaml").read_text().replace("target: local", "target: modal"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "no-modal")}
    (tmp_path / "no-modal" / "modal").mkdir(parents=True)
    (tmp_path / "no-modal" / "modal" / "__init__.py").write_text("raise ImportError('No module named modal')\n")
    result = run_megaspec("apply", str(spec), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "build"),
                          env=env)
    assert result.returncode != 0 and not (tmp_path / "runs").exists(), result.stdout + result.stderr
    assert "->" not in result.stdout, result.stdout


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs for the runs folder: room for the run's files and one checkpoint (~2 MB), not two."""
    where = tmp_path / "runs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root and mount(8) needed): {mounted.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_a_located_error_with_a_receipt_and_resume_continues_bit_identical(
        tmp_path, small_disk, killed_at_step_8):
    spec, _, whole_losses = killed_at_step_8
    full = apply_to_end(tmp_path, str(spec), "--steps", "9")
    run_dir = next(small_disk.iterdir())
    assert full.returncode == 1 and "Traceback" not in full.stdout + full.stderr, full.stdout + full.stderr
    receipt, manifest = read_receipt(run_dir / "receipt.json"), read_manifest(run_dir)
    assert (receipt.error.code, receipt.error.stage, receipt.error.step) == ("MS815", "checkpoint", 6), receipt.error
    said = receipt.error.message
    assert "No space left on device (ENOSPC)" in said and f"`{run_dir / 'checkpoints'}" in said, said
    assert manifest.state == "error"
    assert not (run_dir / "checkpoints" / ".tmp-step-6").exists()  # the failed save made room again
    status = run_megaspec("status", str(small_disk))
    assert status.returncode == 1 and "MS815" in status.stdout, status.stdout + status.stderr  # 1: an error
    recorded = (run_dir / "manifest.json").read_bytes()
    orphan = {**json.loads(recorded), "state": "running", "error": None, "receipt": None, "completed_at": None,
              "process": {"pid": 2**22 + 1, "host": socket.gethostname(), "started_at": None}}  # no such pid
    (run_dir / "manifest.json").write_text(json.dumps(orphan))  # as a launcher that could not record its end
    with open(small_disk / "filler", "wb") as filler:  # the disk is now full: status cannot write
        with pytest.raises(OSError):
            filler.write(b"\0" * (16 << 20))
            filler.flush()
    full_status = run_megaspec("status", str(small_disk))
    assert full_status.returncode == 1 and "MS815" in full_status.stdout, full_status.stdout + full_status.stderr
    (small_disk / "filler").unlink()
    (run_dir / "manifest.json").write_bytes(recorded)
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    resumed = apply_to_end(tmp_path, str(spec), "--steps", "9", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_receipt(run_dir / "receipt.json").losses == whole_losses


def fork_server_of(launcher: int) -> int:
    """The fork server of a launcher: its child that serves forks (marked with the launcher's pid)."""
    def found() -> int | None:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == launcher and b"multiprocessing.forkserver" in cmdline:
                return int(stat.parent.name)
        return None
    return wait_for(found, "the fork server")


def test_a_fork_server_killed_mid_run_is_named_not_a_rank(tmp_path):
    proc = start_apply(tmp_path, str(ckpt_spec(tmp_path)), "--steps", "400")
    run_dir = trained_a_step(tmp_path)
    os.kill(fork_server_of(proc.pid), signal.SIGKILL)
    out, err = proc.communicate(timeout=EVENT_DEADLINE_S)
    assert proc.returncode == 1, out + err
    error = read_receipt(run_dir / "receipt.json").error
    assert (error.code, error.rank, error.stage) == ("MS816", None, "train"), error
    assert "the fork server (pid " in error.message and "killed by SIGKILL" in error.message
    assert read_manifest(run_dir).state == "error"
    wait_for(lambda: not processes_of(proc.pid), "nothing of the run left running")


def test_a_stopped_fork_server_does_not_hold_apply_once_the_ranks_finished(tmp_path):
    proc = start_apply(tmp_path, str(ckpt_spec(tmp_path)), "--steps", "20")
    run_dir = trained_a_step(tmp_path)
    server = fork_server_of(proc.pid)
    os.kill(server, signal.SIGSTOP)
    out, err = proc.communicate(timeout=EVENT_DEADLINE_S)
    assert proc.returncode == 0, out + err
    receipt = read_receipt(run_dir / "receipt.json")
    assert receipt.status == "ok" and [d.code for d in receipt.diagnostics] == ["MS816"], receipt.diagnostics
    assert f"the fork server (pid {server})" in receipt.diagnostics[0].message and "SIGSTOP" in receipt.diagnostics[0].message


def test_a_fifo_as_data_path_is_refused_before_any_rank_starts(tmp_path):
    fifo = tmp_path / "tokens.bin"
    os.mkfifo(fifo)
    spec = tmp_path / "fifo.yaml"
    spec.write_text((REPO_ROOT / "specs" / "cpu-local.yaml").read_text().replace(
        "  source: synthetic", f"  source: shards\n  path: {fifo}"))
    result = apply_to_end(tmp_path, str(spec), "--steps", "4")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MS813" in result.stdout and "is not a regular file" in result.stdout, result.stdout + result.stderr


def test_a_deadline_interrupts_a_blocking_open():
    from megaspec.runtime.contract.errors import TimedOut, deadline

    read_end, _ = os.pipe()
    fifo = Path(f"/proc/self/fd/{read_end}")
    with pytest.raises(TimedOut, match="exceeded the test's bound"), deadline(0.2, "the test's bound"):
        fifo.read_bytes()  # blocks: nobody writes, nobody closes
    os.close(read_end)


@pytest.mark.parametrize(("drill", "state", "code"), [
    ("launcher:3:term", "interrupted", "MS809"), ("fork-server:3:kill", "error", "MS816"),
    ("disk:3:full", "error", "MS815")])
def test_a_drill_rehearses_a_fault_from_outside_the_ranks(tmp_path, drill, state, code):
    proc = start_apply(tmp_path, str(ckpt_spec(tmp_path)), "--steps", "9", env={"MEGASPEC_FAULT": drill})
    out, err = proc.communicate(timeout=EVENT_DEADLINE_S)
    run_dir = run_dir_of(tmp_path)
    assert read_manifest(run_dir).state == state, out + err
    assert read_receipt(run_dir / "receipt.json").error.code == code
    wait_for(lambda: not processes_of(proc.pid), "nothing of the run left running")


def test_outside_drills_are_checked_before_launch():
    from megaspec.runtime.rank import drills

    assert drills.parse("fork-server:4:stop", world_size=2) == drills.OutsideDrill("fork-server", 4, "stop")
    with pytest.raises(drills.DrillError, match=r"expected `disk:<step>:<full>`"):
        drills.parse("disk:0:full", world_size=2)
    with pytest.raises(drills.DrillError, match=r"expected `launcher:<step>:<kill\|term>`"):
        drills.parse("launcher:3:stop", world_size=2)


def test_the_fault_benchmark_in_small_every_trial_right():
    """benchmarks/fault_outside.py's smaller form: one trial of its quickest faults, judged as it judges."""
    from benchmarks.fault_outside import run_table

    table = run_table(["sigterm-at-start", "fifo-data"], trials=1)
    wrong = [(name, trial) for name, trials in table for trial in trials if not trial.right]
    assert not wrong, wrong


def test_a_read_only_runs_folder_is_a_located_error_and_nothing_is_announced(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(runs)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root and mount(8) needed): {mounted.stderr.strip()}")
    try:
        result = apply_to_end(tmp_path, str(REPO_ROOT / "specs" / "cpu-local.yaml"))
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert "MS815" in result.stderr and f"Read-only file system (EROFS): `{runs}/" in result.stderr, result.stderr
    assert "apply: " not in result.stdout


def test_a_sigterm_in_a_local_sweep_stops_it_with_143_leaving_its_runs_resumable(tmp_path):
    """The sweep queues its runs (`planned`) first: the signal lands while it prepares or runs one."""
    proc = start_apply(tmp_path, str(REPO_ROOT / "examples" / "sweeps" / "cpu-lr-sweep.yaml"), "--yes")
    wait_for(lambda: next((tmp_path / "runs").glob("*/*/manifest.json"), None), "a run's manifest")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=EVENT_DEADLINE_S)
    assert proc.returncode == 143 and "Traceback" not in err and "Aborted" not in err, out + err
    assert err.strip().splitlines()[-1].startswith("interrupted: "), err
    states = {read_manifest(m.parent).state for m in (tmp_path / "runs").glob("*/*/manifest.json")}
    assert states <= {"planned", "interrupted"}, states  # what `apply --resume` of the sweep launches
    wait_for(lambda: not processes_of(proc.pid), "nothing of the sweep left running")


def test_a_sigterm_while_a_sweep_resumes_stops_it_with_143_and_it_resumes_again(tmp_path):
    """`apply SWEEP_DIR` (the resume) ends on a signal as the first apply of the sweep does."""
    proc = start_apply(tmp_path, str(REPO_ROOT / "examples" / "sweeps" / "cpu-lr-sweep.yaml"), "--yes")
    first = wait_for(lambda: next((tmp_path / "runs").glob("*/*/manifest.json"), None), "a run's manifest")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=EVENT_DEADLINE_S)
    sweep_dir = first.parent.parent
    resumed = start_apply(tmp_path, str(sweep_dir))
    said = []
    for line in resumed.stdout:  # the event: the resume names the first run it launches
        said.append(line)
        if line.startswith("[1/"):
            break
    assert said and said[-1].startswith("[1/"), "".join(said)
    resumed.send_signal(signal.SIGTERM)
    out, err = resumed.communicate(timeout=EVENT_DEADLINE_S)
    assert resumed.returncode == 143 and "Traceback" not in err and "Aborted" not in err, out + err
    assert err.strip().splitlines()[-1].startswith("interrupted: "), err
    states = {read_manifest(m.parent).state for m in sweep_dir.glob("*/manifest.json")}
    assert states <= {"planned", "interrupted", "ok"}, states
    wait_for(lambda: not processes_of(resumed.pid), "nothing of the resumed sweep left running")
