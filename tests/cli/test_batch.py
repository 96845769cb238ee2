"""Large batches over worker processes: the same bytes out as one process, in the same order.

Run as real subprocesses (not click's runner), because the forked workers and the parent's
buffered stdout are exactly what could go wrong: duplicated or reordered lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from megaspec.compiler.lint.batch import MIN_FILES_PER_WORKER, map_ordered, workers_for
from tests.conftest import run_megaspec

NUM_SPECS = 2 * MIN_FILES_PER_WORKER + 3  # enough for two workers


def _square(x: int) -> int:
    return x * x


def _fail_on_seven(x: int) -> int:
    if x == 7:
        raise ValueError("seven")
    return x


def spec_text(i: int) -> str:
    broken = i % 10 == 3  # some specs have errors, so stderr and exit codes are exercised too
    batch = "12, micro_batch: 1" if broken else f"{8 * (1 + i % 3)}, micro_batch: 1"
    return (f"megaspec: 1\nname: batch-{i:03d}\npreset: tiny\nresources: {{gpu: \"H100:8\", exact: true}}\n"
            f"train: {{steps: {10 + i}, global_batch: {batch}}}\n")


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("batch-specs")
    for i in range(NUM_SPECS):
        (folder / f"s{i:03d}.yaml").write_text(spec_text(i))
    return folder


def megaspec(*args: str) -> subprocess.CompletedProcess:
    return run_megaspec(*args, timeout=120)


def test_workers_follow_the_batch_size():
    assert workers_for(MIN_FILES_PER_WORKER - 1, 8) == 1  # small batches stay in-process
    assert workers_for(10 * MIN_FILES_PER_WORKER, 4) == 4
    assert workers_for(3 * MIN_FILES_PER_WORKER, 8) == 3  # at most one worker per 32 files
    assert workers_for(10 * MIN_FILES_PER_WORKER, 1) == 1


def test_map_ordered_keeps_input_order_across_workers():
    items = list(range(5 * MIN_FILES_PER_WORKER))
    assert list(map_ordered(_square, items, jobs=3)) == [x * x for x in items]


def test_an_exception_in_a_worker_reaches_the_caller():
    with pytest.raises(ValueError, match="seven"):
        list(map_ordered(_fail_on_seven, list(range(3 * MIN_FILES_PER_WORKER)), jobs=2))


def test_parallel_lint_prints_what_one_process_prints(spec_dir: Path):
    serial = megaspec("lint", "--no-config", "--format", "concise", "-j1", str(spec_dir))
    parallel = megaspec("lint", "--no-config", "--format", "concise", "-j2", str(spec_dir))
    assert serial.returncode == parallel.returncode == 1, serial.stderr
    assert serial.stdout.count("error[MS201]") == len([i for i in range(NUM_SPECS) if i % 10 == 3])
    assert parallel.stdout == serial.stdout


def test_parallel_compile_writes_what_one_process_writes(spec_dir: Path, tmp_path: Path):
    serial = megaspec("compile", "-j1", str(spec_dir), "-o", str(tmp_path / "one"))
    parallel = megaspec("compile", "-j2", str(spec_dir), "-o", str(tmp_path / "two"))
    assert serial.returncode == parallel.returncode == 1
    num_ok = len([i for i in range(NUM_SPECS) if i % 10 != 3])
    assert parallel.stdout.replace(str(tmp_path / "two"), "OUT") == serial.stdout.replace(str(tmp_path / "one"), "OUT")
    assert parallel.stdout.count(": wrote ") == num_ok  # each line once: no output flushed twice by a fork
    assert parallel.stderr == serial.stderr and parallel.stderr.count("not compiled") == NUM_SPECS - num_ok
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert one == two and len(one) == 2 * num_ok
    assert all((tmp_path / "one" / p).read_bytes() == (tmp_path / "two" / p).read_bytes() for p in one)


def _kill_self_on_seven(x: int) -> int:
    if x == 7:
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer does to a worker
    return x


def _crash_result(x: int, reason: str) -> str:
    return f"crashed: {reason}"


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_crashing_item_is_reported_and_the_batch_goes_on(jobs: int):
    results = list(map_ordered(_fail_on_seven, list(range(3 * MIN_FILES_PER_WORKER)), jobs=jobs,
                               on_crash=_crash_result))
    assert results[7] == "crashed: ValueError: seven"
    assert results[:7] + results[8:] == [x for x in range(3 * MIN_FILES_PER_WORKER) if x != 7]


def test_a_killed_worker_is_reported_for_its_item_not_as_a_broken_pool():
    results = list(map_ordered(_kill_self_on_seven, list(range(3 * MIN_FILES_PER_WORKER)), jobs=2,
                               on_crash=_crash_result))
    assert results[7] == "crashed: its worker process was killed by signal 9 (out of memory?)"
    assert results[:7] + results[8:] == [x for x in range(3 * MIN_FILES_PER_WORKER) if x != 7]


WORKER_SCRIPT = """
import os, sys, time
from functools import partial
from megaspec.compiler.lint.batch import map_ordered

def work(folder, item):
    with open(os.path.join(folder, str(item)), "w") as f:
        f.write(str(os.getpid()))
    time.sleep(0.2)
    return item

for _ in map_ordered(partial(work, sys.argv[1]), list(range(256)), jobs=2):
    pass
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except OSError:
        return False
    return state not in "ZX"  # a zombie has stopped; only its exit status is left to reap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_the_parent(tmp_path: Path):
    parent = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(tmp_path)])
    try:
        assert _waited_for(lambda: len(list(tmp_path.iterdir())) >= 4), "no worker wrote a file"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        pids = _worker_pids(tmp_path) - {parent.pid}
        assert pids and _waited_for(lambda: not [pid for pid in pids if _alive(pid)]), "a worker outlived the parent"
        assert _worker_pids(tmp_path) - {parent.pid} == pids  # no worker was started in their place
    finally:
        parent.kill()


def _worker_pids(folder: Path) -> set[int]:
    return {int(p.read_text() or 0) for p in folder.iterdir()} - {0}


def _waited_for(event: Callable[[], bool], hang_guard_s: float = 120.0) -> bool:
    """Wait until `event()` holds (the guard only stops a broken test from hanging: load never trips it)."""
    deadline = time.monotonic() + hang_guard_s
    while not event():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_lint_and_compile_exit_3_on_an_internal_error_and_check_the_other_files(tmp_path: Path):
    """A bug that hits one file (simulated: no input reaches one any more) is MS902 for that file,
    exit 3 from both verbs, and every other file is still checked."""
    for i in range(3):
        (tmp_path / f"s{i}.yaml").write_text(spec_text(i))
    script = ("import sys\nimport megaspec.compiler.lint.check as check\nreal = check.compose\n"
              "def compose(path, display=None, **given):\n"
              "    if str(path).endswith('s1.yaml'):\n        raise RuntimeError('boom')\n"
              "    return real(path, display, **given)\n"
              "check.compose = compose\nfrom megaspec.compiler.cli import main\nmain()\n")
    run = [sys.executable, "-c", script]
    lint = subprocess.run([*run, "lint", "--format", "concise", str(tmp_path)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    build = subprocess.run([*run, "compile", str(tmp_path), "-o", str(tmp_path / "build")], capture_output=True,
                           text=True, timeout=120, cwd=tmp_path)
    assert lint.returncode == build.returncode == 3, (lint.stdout, lint.stderr, build.stderr)
    assert "s1.yaml:1:1: error[MS902] internal error while checking this file: RuntimeError: boom" in lint.stdout
    assert "s1.yaml:1:1: error[MS902]" in build.stderr
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == ["batch-000", "batch-002"]
