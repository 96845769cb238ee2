"""Compile-cache seed: a 2-rank `compile: true` tiny run on CPU, cold vs seeded, through the CLI.

`megaspec cache seed` compiles the model once on one device; a `cache.policy: require-seed` run
restores the seed before its ranks compile. Printed: each run's compile time (the receipt's
`compile_s`, the slowest rank: the first step minus a steady one), the seed's own compile, and the
ratio seeded / cold. Goal: the seeded compile at most half the cold one.
Run: `python benchmarks/seed_compile.py [--repeats 1]` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
megaspec: 1
name: seed-bench
target: local
resources: {{ranks: 2, timeout: 10m}}
preset: tiny
cache: {cache}
train: {{steps: 6, warmup_steps: 2, global_batch: 8, micro_batch: 4, seq_len: 64, precision: fp32, compile: true}}
distributed: {{timeout: 10m}}
"""
MEGASPEC = [sys.executable, "-c", "from megaspec.compiler.cli import main; main()"]


def megaspec(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([*MEGASPEC, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"megaspec {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def run_compile_s(tmp: Path, spec: str) -> tuple[float, str]:
    """Apply `spec` in a fresh runs dir; the slowest rank's compile time and the startup state."""
    runs = tmp / f"runs-{time.monotonic_ns()}"
    megaspec("apply", spec, "--runs-dir", str(runs), "-o", str(tmp / "build"), "--no-progress", cwd=tmp)
    receipt = json.loads(next(runs.glob("*/receipt.json")).read_text())
    assert receipt["status"] == "ok", receipt["error"]
    return max(r["compile_s"] for r in receipt["per_rank"]), receipt["startup"]["state"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "cold.yaml").write_text(SPEC.format(cache="{policy: cold}"))
        (tmp / "seeded.yaml").write_text(SPEC.format(cache=f"{{policy: require-seed, seed: {tmp / 'seed'}}}"))
        seed_s = megaspec("cache", "seed", "seeded.yaml", cwd=tmp)
        seed_compile_s = json.loads((tmp / "seed" / "seed.json").read_text())["compile_s"]
        print(f"cache seed: {seed_s:.1f} s end to end, its compile {seed_compile_s:.1f} s")
        for i in range(args.repeats):
            cold, cold_state = run_compile_s(tmp, "cold.yaml")
            seeded, seeded_state = run_compile_s(tmp, "seeded.yaml")
            assert (cold_state, seeded_state) == ("cold", "seeded"), (cold_state, seeded_state)
            verdict = "met" if seeded <= cold / 2 else "NOT met"
            print(f"run {i + 1}: compile cold {cold:.1f} s, seeded {seeded:.1f} s, "
                  f"ratio {seeded / cold:.2f} (goal <= 0.50: {verdict})")


if __name__ == "__main__":
    main()
