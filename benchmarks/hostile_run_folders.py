"""Hostile run folders through every reader: each case under 5 s (or twice the untouched folder's time on a
loaded machine) and 200 MB, no internal error, no hang, no terminal escape on the output.

    python benchmarks/hostile_run_folders.py [--only SUBSTRING]

A real local sweep of two runs is applied once (specs/cpu-local.yaml with a two-value matrix); each
case copies it and replaces one file of the first run (or the sweep's own sweep.json) with something
someone could leave there: a FIFO, a link to /dev/stdin or /dev/zero, a folder, an empty or a 20 MB
file, a BOM, 100,000 `[`, another schema version, another JSON type, bytes that are not UTF-8,
progress lines of every wrong shape, strings with terminal escapes. Every reader then runs on it
in a fresh process (`status`, `collect`, `report`, `receipts list`, `receipts show`, `logs`): its
wall time and peak RSS (wait4) are measured, its exit status must not be 3 (internal error) and
its output must hold no ESC, BEL, C1 or bidi control. A summary line per command; exit 1 on a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from _common import MEGASPEC, ROOT

GOAL_S, GOAL_MB = 5.0, 200
ESCAPES = "\x1b]0;pwned\x07\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\x9b31m\u202e\x07"
CONTROLS = frozenset("\x1b\x07\x9b\x9d\u202e\u202d\u2066\u2067\u2068\u2069\u200e\u200f")
SWEEP = "sweep:\n  matrix: {train.lr: [1.0e-3, 2.0e-3]}\n"

Mutation = Callable[[Path], None]


def _write(text: str | bytes) -> Mutation:
    def mutate(path: Path) -> None:
        path.unlink(missing_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
    return mutate


def _special(kind: str) -> Mutation:
    def mutate(path: Path) -> None:
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dir":
            path.mkdir()
        else:
            path.symlink_to(kind)
    return mutate


def _json_edit(edit: Callable[[dict], None]) -> Mutation:
    def mutate(path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data), encoding="utf-8")
    return mutate


def _set(key_path: str, value) -> Mutation:
    def edit(data: dict) -> None:
        *parents, last = key_path.split(".")
        for key in parents:
            if isinstance(data, dict) and data.get(key) is None:  # `error: null` in a run that succeeded
                data[key] = {}
            data = data[key] if isinstance(data, dict) else data[int(key)]
        if isinstance(data, list):
            data[int(last)] = value
        else:
            data[last] = value
    return _json_edit(edit)


FILE_CASES: dict[str, Mutation] = {
    "fifo": _special("fifo"), "/dev/stdin": _special("/dev/stdin"), "/dev/zero": _special("/dev/zero"),
    "folder": _special("dir"), "link to /proc/self/environ": _special("/proc/self/environ"),
    "empty": _write(""), "BOM + JSON list": _write(b"\xef\xbb\xbf[1]"), "20 MB": _write(" " * (20 << 20)),
    "[ x 100,000": _write("[" * 100_000), "{ x 100,000": _write('{"a":' * 100_000), "not UTF-8": _write(b"\xff\xfe\x00"),
    "JSON null": _write("null"), "schema v2": _set("schema_version", "megaspec.manifest.v2"),
    "integer of 10,000 digits": _write("1" * 10_000),
}
JSON_FILES = ("manifest.json", "receipt.json", "plan.json", "../sweep.json", "ranks/rank-0.json")
PROGRESS_LINES = ["5", "null", '"x"', '{"losses": 5}', '{"losses": [[1]]}', "[1e308, -1e308]",
                  '{"step": 3, "losses": [1e308, -1e308]}', '{"step": "x", "loss": "y"}', '{"losses": [true]}',
                  '{"step": 1, "loss": NaN, "losses": [NaN, Infinity]}', "[" * 100_000, '{"losses": ' * 10_000]
STRING_CASES: dict[str, tuple[str, str]] = {  # a string field set to ESCAPES: (file, key path)
    "receipt name": ("receipt.json", "name"), "receipt error message": ("receipt.json", "error.message"),
    "observed device (20 KB)": ("receipt.json", "hardware.observed_devices.0"), "manifest note": ("manifest.json", "notes"),
    "manifest error": ("manifest.json", "error.message"), "sweep run name": ("../sweep.json", "runs.0.name"),
    "plan name": ("plan.json", "name"),
}


def cases() -> dict[str, tuple[str, Mutation]]:
    """name -> (file of the first run, mutation); the first, `floor`, changes nothing (the time a
    loaded machine takes anyway)."""
    out = {"floor": ("manifest.json", lambda path: None)}
    out |= {f"{f} {c}": (f, m) for f in (*JSON_FILES, "progress.jsonl") for c, m in FILE_CASES.items()
            if not (f == "progress.jsonl" and c == "schema v2")}
    out |= {f"progress line {line[:30]}": ("progress.jsonl", _write(line + "\n")) for line in PROGRESS_LINES}
    for name, (file, key) in STRING_CASES.items():
        value = ESCAPES * 500 if "20 KB" in name else [ESCAPES] if key == "notes" else ESCAPES
        out[name] = (file, _set(key, value))
    out["log with escapes"] = ("logs", _log_escapes)
    out["log is a FIFO"] = ("logs", _log_fifo)
    return out


def _rank_logs(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("logs/*/attempt_*/*/stdout.log"))


def _log_escapes(path: Path) -> None:
    for log in _rank_logs(path.parent):
        log.write_text(f"step 1 {ESCAPES}\n", encoding="utf-8")


def _log_fifo(path: Path) -> None:
    for log in _rank_logs(path.parent):
        log.unlink()
        os.mkfifo(log)


def commands(sweep: Path, run: Path, out: Path) -> dict[str, list[str]]:
    return {"status": ["status", str(sweep)], "collect": ["collect", str(sweep)],
            "report": ["report", str(sweep), "-o", str(out)], "receipts list": ["receipts", "list", str(sweep)],
            "receipts show": ["receipts", "show", str(run)], "logs": ["logs", str(run)]}


def measure(args: list[str], cwd: Path, kill_after_s: float) -> tuple[float, float, int, str]:
    """Seconds, peak RSS in MB (this child's own, wait4), exit status and output of one megaspec process;
    killed after `kill_after_s` (a hang is a miss, not a stuck benchmark)."""
    start = time.perf_counter()
    proc = subprocess.Popen([*MEGASPEC, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    killer = threading.Timer(kill_after_s, proc.kill)
    killer.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, proc.returncode, output.decode("utf-8", "replace")


def make_sweep(root: Path) -> Path:
    """A real local sweep of two tiny runs, applied once."""
    root.mkdir()
    spec = (ROOT / "specs" / "cpu-local.yaml").read_text(encoding="utf-8").replace("steps: 40", "steps: 6")
    (root / "hostile.yaml").write_text(spec + SWEEP, encoding="utf-8")
    done = subprocess.run([*MEGASPEC, "apply", "hostile.yaml", "--runs-dir", "runs"], cwd=root, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"the sweep did not run ({done.returncode}):\n{done.stdout}{done.stderr}")
    return next((root / "runs").glob("*/sweep.json")).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the cases whose name holds one of these (comma-separated)")
    only = parser.parse_args().only.split(",")
    failures, worst, floor, runs = [], {}, {}, 0
    with tempfile.TemporaryDirectory() as tmp:
        base = make_sweep(Path(tmp) / "base")
        for name, (file, mutate) in cases().items():
            if not any(o in name for o in only) and name != "floor":
                continue
            case = Path(tmp) / "case"
            shutil.rmtree(case, ignore_errors=True)
            shutil.copytree(base.parent.parent, case, symlinks=True)
            sweep = case / "runs" / base.name
            run = sorted(p.parent for p in sweep.glob("*/manifest.json"))[0]
            mutate(run / file)
            for command, args in commands(sweep, run, case / "out").items():
                allowed_s = max(GOAL_S, 2 * floor.get(command, 0.0))  # a loaded machine slows the floor too
                seconds, mb, status, output = measure(args, case, 3 * allowed_s)
                bad = [why for why, failed in (("internal error", status == 3 or "MS902" in output),
                                               ("hang" if status in (-9, None) else "slow", seconds > allowed_s),
                                               ("memory", mb > GOAL_MB),
                                               ("terminal escape", any(c in CONTROLS for c in output))) if failed]
                if name == "floor":
                    floor[command] = seconds
                worst[command] = max(worst.get(command, (0.0, 0.0)), (seconds, mb))
                runs += 1
                if bad:
                    failures.append(f"{name} | {command}: {', '.join(bad)} ({seconds:.1f} s, {mb:.0f} MB, "
                                    f"exit {status}) {output.strip().splitlines()[-1][:200] if output.strip() else ''}")
                    print(failures[-1], flush=True)
            print(f"done: {name}", flush=True)
    for command, (seconds, mb) in worst.items():
        print(f"{command:<14} untouched folder {floor.get(command, 0.0):.2f} s; slowest case {seconds:.2f} s, "
              f"peak {mb:.0f} MB")
    print(f"{len(failures)} failures over {runs} command runs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
