"""Resource bombs against `megaspec lint`: each must be refused (exit 1, a located diagnostic) within
1 s and 200 MB, start-up included.

    python benchmarks/bombs.py

Each bomb is linted by a fresh `megaspec lint --format concise` process; the wall time and the peak
RSS of that process (wait4) are printed with the first line of what it said. The diamond of bases
is a valid spec (each base is composed once): it must pass, in the same time. A loaded machine adds
to every time: the floor line (a clean spec) shows how much.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GOAL_S, GOAL_MB = 1.0, 200
HEAD = "megaspec: 1\nname: bomb\ntarget: local\npreset: tiny\nresources: {ranks: 1}\n"
SWEEP = HEAD + "sweep:\n  matrix: {train.lr: [1.0e-4, 2.0e-4]}\n  name: %s\n"


def _laughs() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return HEAD + "\n".join(lines) + "\n"


def _write_bombs(root: Path) -> dict[str, Path]:
    """name -> the path to lint."""
    texts = {
        "billion laughs (10^9 nodes)": _laughs(),
        "flow nesting 100,000 deep": HEAD + "x: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "block nesting 1,000 deep": HEAD + "".join(f"{' ' * i}k:\n" for i in range(1_000)),
        "file of 1 MiB + 1": HEAD + "#" * (1 << 20) + "\n",
        "50,000 plain keys": HEAD + "image:\n  env:\n" + "".join(f"    K{i}: v\n" for i in range(50_000)),
        "integer of 1,000,000 digits": HEAD + "train: {steps: " + "9" * 1_000_000 + "}\n",
        "matrix product 10^12": HEAD + "sweep:\n  matrix: {" + ", ".join(
            f"train.{k}: [{', '.join(str(i + 1) for i in range(1000))}]"
            for k in ("steps", "seed", "log_every", "warmup_steps")) + "}\n",
        "name renders 400 MB": SWEEP % "\"{{ 'x' * 400000000 }}\"",
        "name loops 10^8 times": SWEEP % "\"{% for i in range(100000000) %}x{% endfor %}\"",
        "name computes 10**10**10": SWEEP % "\"{{ 10 ** 10 ** 10 }}\"",
        "name replace bomb": SWEEP % "\"{{ (name * 60) | replace('', name * 60) }}\"",
        "name format width 4e8": SWEEP % "\"{{ '%0400000000d' | format(1) }}\"",
    }
    paths = {}
    for i, (name, text) in enumerate(texts.items()):
        paths[name] = root / f"b{i}.yaml"
        paths[name].write_text(text, encoding="utf-8")
    texts.clear()  # a child starts with this process's peak RSS (fork): keep it small before measuring
    diamond = root / "diamond"
    diamond.mkdir()
    (diamond / "_l24a.yaml").write_text("megaspec: 1\n")
    (diamond / "_l24b.yaml").write_text("megaspec: 1\n")
    for level in range(23, -1, -1):
        for side in "ab":
            (diamond / f"_l{level}{side}.yaml").write_text(
                f"megaspec: 1\nextends: [_l{level + 1}a.yaml, _l{level + 1}b.yaml]\n")
    (diamond / "run.yaml").write_text(HEAD + "extends: [_l0a.yaml, _l0b.yaml]\n")
    paths["diamond extends, 2^25 paths"] = diamond / "run.yaml"  # valid: composed once per file, exit 0
    chain = root / "chain"
    chain.mkdir()
    for i in range(1000):
        (chain / f"_c{i}.yaml").write_text(f"megaspec: 1\nextends: _c{i + 1}.yaml\n")
    (chain / "_c1000.yaml").write_text("megaspec: 1\n")
    (chain / "run.yaml").write_text(HEAD + "extends: _c0.yaml\n")
    paths["extends chain of 1,000 files"] = chain / "run.yaml"
    os.mkfifo(root / "fifo.yaml")
    (root / "fifodir").mkdir()
    os.mkfifo(root / "fifodir" / "x.yaml")
    paths.update({"/dev/zero": Path("/dev/zero"), "/dev/urandom": Path("/dev/urandom"),
                  "a FIFO named x.yaml": root / "fifo.yaml", "a folder holding a FIFO": root / "fifodir"})
    return paths


def measure(path: Path, cwd: Path) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MB, exit code, first output line) of one fresh `megaspec lint`."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "from megaspec.compiler.cli import main; main()", "lint",
                             "--format", "concise", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd)
    killer = threading.Timer(60, proc.kill)  # a hang is a miss, not a stuck benchmark
    killer.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS, not the maximum of all children
    killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    first = out.decode("utf-8", "replace").strip().splitlines()[:1]
    return elapsed, usage.ru_maxrss / 1024, proc.returncode, (first[0] if first else "")[:110]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="megaspec-bombs-"))
    bombs = _write_bombs(root)
    (root / "clean.yaml").write_text(HEAD)
    elapsed, rss_mb, code, _ = measure(root / "clean.yaml", root)
    print(f"floor: a clean spec takes {elapsed:.2f} s and {rss_mb:.0f} MB (start-up included)")
    failures = 0
    print(f"{'bomb':<32} {'time':>7} {'peak RSS':>9}  exit  first line")
    for name, path in bombs.items():
        elapsed, rss_mb, code, first = measure(path, root)
        ok = code == (0 if name.startswith("diamond") else 1) and elapsed <= GOAL_S and rss_mb <= GOAL_MB
        failures += not ok
        print(f"{name:<32} {elapsed:6.2f}s {rss_mb:7.0f}MB  {code:>4}  {'' if ok else 'MISSED '}{first}")
    print(f"goal: refused in <= {GOAL_S:g} s and <= {GOAL_MB} MB each; {failures} missed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
