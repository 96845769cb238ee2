"""Faults from outside the ranks, each injected from outside the process, N trials each: a table.

Each fault hits a real `megaspec apply` of a 2-rank CPU run: signals to the launcher (SIGKILL,
SIGTERM, a SIGTERM as soon as the run folder exists) and to the fork server (SIGKILL, SIGSTOP), a
damaged checkpoint before `--resume`, a full disk (a 3 MB tmpfs; skipped where mount is not
permitted), a second `--resume` while a launcher holds the folder, a FIFO as `data.path`, a
garbled line written into `progress.jsonl` mid-run. A trial is judged on four columns:
  named    the manifest, the receipt and `status` name what happened (its code or state)
  kept     the run's record is there: a terminal manifest, and a receipt wherever a process could write one
  stopped  no process of the run is left (the launcher's MEGASPEC_LAUNCHER_PID mark in /proc)
  whole    every JSON file in the run folder parses (nothing half-written)
Goal: every trial right.

    python benchmarks/fault_outside.py --trials 3
    python benchmarks/fault_outside.py --trials 1 --faults launcher-sigkill,fifo-data
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from megaspec.compiler.runs.manifest import read_manifest  # noqa: E402
from megaspec.runtime.contract.claim import claim  # noqa: E402
from megaspec.runtime.contract.rundir import LAUNCHER_CLAIM  # noqa: E402
from megaspec.runtime.launch.lifeline import LAUNCHER_PID_VAR  # noqa: E402
from tests.conftest import REPO_ROOT, run_megaspec  # noqa: E402
from tests.test_fault_outside import (  # noqa: E402  (the helpers the suite's tests inject with)
    apply_to_end,
    ckpt_spec,
    fork_server_of,
    processes_of,
    run_dir_of,
    start_apply,
    trained_a_step,
    wait_for,
)


@dataclass
class Trial:
    named: bool
    kept: bool
    stopped: bool
    whole: bool
    note: str = ""

    @property
    def right(self) -> bool:
        return self.named and self.kept and self.stopped and self.whole


def _whole(run_dir: Path) -> bool:
    for path in [*run_dir.glob("*.json"), *run_dir.glob("ranks/*.json")]:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    return True


def _receipt(run_dir: Path) -> dict:
    path = run_dir / "receipt.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def orphans() -> list[str]:
    """Processes of any run whose launcher is gone (what a kill of a launcher must never leave)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            marks = [v for v in environ.read_bytes().split(b"\0") if v.startswith(LAUNCHER_PID_VAR.encode() + b"=")]
        except OSError:
            continue
        launcher = int(marks[0].split(b"=", 1)[1]) if marks and marks[0].split(b"=", 1)[1].isdigit() else None
        if launcher is not None and not Path(f"/proc/{launcher}").exists():
            found.append(environ.parent.name)
    return found


def _judge(run_dir: Path, launcher: int | None, named: bool, *, receipt_expected: bool = True,
           note: str = "") -> Trial:
    """`launcher`: the apply process when this benchmark started it (None: it ran to its end)."""
    if launcher is not None:
        wait_for(lambda: not processes_of(launcher), "the run's processes end")
    status = run_megaspec("status", str(run_dir.parent))
    manifest = read_manifest(run_dir)
    answered = status.returncode in (0, 1) and "Traceback" not in status.stderr  # 1: a run ended in error
    kept = manifest.is_terminal and answered and (not receipt_expected or bool(_receipt(run_dir)))
    return Trial(named, kept, not orphans(), _whole(run_dir), note or manifest.state)


def launcher_sigkill(tmp: Path) -> Trial:
    proc = start_apply(tmp, str(ckpt_spec(tmp)), "--steps", "400")
    run_dir = trained_a_step(tmp)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not processes_of(proc.pid), "the ranks end with the launcher")
    status = run_megaspec("status", str(run_dir.parent))
    named = "orphaned" in status.stdout and not _receipt(run_dir)  # no rank trained on to an `ok` receipt
    return _judge(run_dir, proc.pid, named, receipt_expected=False)


def launcher_sigterm(tmp: Path) -> Trial:
    proc = start_apply(tmp, str(ckpt_spec(tmp)), "--steps", "400")
    run_dir = trained_a_step(tmp)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait()
    named = code == 143 and _receipt(run_dir).get("error", {}).get("code") == "MS809"
    return _judge(run_dir, proc.pid, named and read_manifest(run_dir).state == "interrupted")


def sigterm_at_start(tmp: Path) -> Trial:
    proc = start_apply(tmp, str(REPO_ROOT / "specs" / "cpu-local.yaml"))
    run_dir = run_dir_of(tmp)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    named = proc.returncode == 143 and read_manifest(run_dir).state == "interrupted" and "Aborted" not in err
    return _judge(run_dir, proc.pid, named, receipt_expected=False)


def fork_server_sigkill(tmp: Path) -> Trial:
    proc = start_apply(tmp, str(ckpt_spec(tmp)), "--steps", "400")
    run_dir = trained_a_step(tmp)
    os.kill(fork_server_of(proc.pid), signal.SIGKILL)
    proc.wait()
    error = _receipt(run_dir).get("error") or {}
    return _judge(run_dir, proc.pid, (error.get("code"), error.get("rank")) == ("MS816", None), note=error.get("code", ""))


def fork_server_sigstop(tmp: Path) -> Trial:
    proc = start_apply(tmp, str(ckpt_spec(tmp)), "--steps", "20")
    run_dir = trained_a_step(tmp)
    os.kill(fork_server_of(proc.pid), signal.SIGSTOP)
    code = proc.wait()
    receipt = _receipt(run_dir)
    named = code == 0 and [d["code"] for d in receipt.get("diagnostics", [])] == ["MS816"]
    return _judge(run_dir, proc.pid, named)


def damaged_checkpoint(tmp: Path) -> Trial:
    spec = ckpt_spec(tmp)
    killed = apply_to_end(tmp, str(spec), "--steps", "9", env={"MEGASPEC_FAULT": "1:train:8:kill"})
    run_dir = next((tmp / "runs").iterdir())
    shard = next((run_dir / "checkpoints" / "step-6").glob("*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    shard.write_bytes(bytes(data))
    resumed = apply_to_end(tmp, str(spec), "--steps", "9", "--resume", str(run_dir))
    checkpoint = _receipt(run_dir).get("checkpoint") or {}
    named = killed.returncode == 1 and resumed.returncode == 0 and checkpoint.get("resumed_from") == 3 and \
        [s.split(":")[0] for s in checkpoint.get("skipped", [])] == ["step-6"]
    return _judge(run_dir, None, named)


def full_disk(tmp: Path) -> Trial:
    runs = tmp / "runs"
    runs.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(runs)], capture_output=True).returncode:
        return Trial(True, True, True, True, "skipped: mount not permitted")
    try:
        proc = start_apply(tmp, str(ckpt_spec(tmp)), "--steps", "9")
        proc.wait()
        run_dir = next(runs.iterdir())
        error = _receipt(run_dir).get("error") or {}
        named = error.get("code") == "MS815" and "ENOSPC" in error.get("message", "")
        return _judge(run_dir, proc.pid, named, note=error.get("code", ""))
    finally:
        subprocess.run(["umount", "-l", str(runs)], check=False)


def second_resume(tmp: Path) -> Trial:
    spec = ckpt_spec(tmp)
    first = apply_to_end(tmp, str(spec), "--steps", "6")
    run_dir = next((tmp / "runs").iterdir())
    with claim(run_dir / LAUNCHER_CLAIM):  # stands in for a launcher that still trains in the folder
        second = apply_to_end(tmp, str(spec), "--steps", "6", "--resume", str(run_dir))
    named = first.returncode == 0 and second.returncode == 1 and f"(pid {os.getpid()})" in second.stderr
    return _judge(run_dir, None, named)


def fifo_data(tmp: Path) -> Trial:
    fifo = tmp / "tokens.bin"
    os.mkfifo(fifo)
    spec = tmp / "fifo.yaml"
    spec.write_text((REPO_ROOT / "specs" / "cpu-local.yaml").read_text().replace(
        "  source: synthetic", f"  source: shards\n  path: {fifo}"))
    result = apply_to_end(tmp, str(spec), "--steps", "4")
    run_dir = next((tmp / "runs").iterdir())
    return _judge(run_dir, None, result.returncode == 1 and "MS813" in result.stdout)


def garbled_progress(tmp: Path) -> Trial:
    proc = start_apply(tmp, str(ckpt_spec(tmp)), "--steps", "20")
    run_dir = trained_a_step(tmp)
    with open(run_dir / "progress.jsonl", "a") as f:
        f.write('{"step": 3, "loss": \x00garbage}\n')
    code = proc.wait()
    return _judge(run_dir, proc.pid, code == 0 and _receipt(run_dir).get("status") == "ok")


FAULTS: dict[str, Callable[[Path], Trial]] = {
    "launcher-sigkill": launcher_sigkill, "launcher-sigterm": launcher_sigterm, "sigterm-at-start": sigterm_at_start,
    "fork-server-sigkill": fork_server_sigkill, "fork-server-sigstop": fork_server_sigstop,
    "damaged-checkpoint": damaged_checkpoint, "full-disk": full_disk, "second-resume": second_resume,
    "fifo-data": fifo_data, "garbled-progress": garbled_progress,
}


def run_table(names: list[str], trials: int) -> list[tuple[str, list[Trial]]]:
    table = []
    for name in names:
        results = []
        for _ in range(trials):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(FAULTS[name](Path(tmp)))
        table.append((name, results))
    return table


def print_table(table: list[tuple[str, list[Trial]]]) -> int:
    print(f"{'fault':<22} {'named':>6} {'kept':>6} {'stopped':>8} {'whole':>6}  notes")
    wrong = 0
    for name, results in table:
        n = len(results)
        counts = [sum(getattr(r, col) for r in results) for col in ("named", "kept", "stopped", "whole")]
        wrong += sum(not r.right for r in results)
        notes = ", ".join(sorted({r.note for r in results if r.note}))
        print(f"{name:<22} " + " ".join(f"{c}/{n}".rjust(w) for c, w in zip(counts, (6, 6, 8, 6), strict=True)) + f"  {notes}")
    total = sum(len(r) for _, r in table)
    print(f"{total - wrong}/{total} trials right (goal: every trial)")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {', '.join(FAULTS)}")
    args = parser.parse_args()
    sys.exit(1 if print_table(run_table(args.faults.split(","), args.trials)) else 0)


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    main()
