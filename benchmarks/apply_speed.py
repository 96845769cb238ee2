"""What the user waits for `megaspec apply specs/cpu-local.yaml`, and where the time goes.

Printed per run: the wall time of the whole command (what the user waits), the receipt's
`wall_time_s` (launcher start to receipt: worker start-up, rendezvous, 40 steps, teardown) and the
training loop alone (steps x the median step time), beside two floors measured in the same session:
a fresh `python -c "import torch"` and `megaspec --version`.
Goal: the whole command under 8 s on the project's 2-core machine.
Run: `python benchmarks/apply_speed.py [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEGASPEC = [sys.executable, "-c", "from megaspec.compiler.cli import main; main()"]


def timed(cmd: list[str], cwd: Path = ROOT) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def one_apply(tmp: Path) -> tuple[float, float, float]:
    runs = tmp / f"runs-{time.monotonic_ns()}"
    wall = timed([*MEGASPEC, "apply", "specs/cpu-local.yaml", "--runs-dir", str(runs), "-o", str(tmp / "build"),
                  "--no-progress"])
    receipt = json.loads(next(runs.glob("*/receipt.json")).read_text())
    assert receipt["status"] == "ok", receipt["error"]
    m = receipt["metrics"]
    return wall, m["wall_time_s"], m["step_time_p50_s"] * receipt["steps"]["completed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rows = []
        for _ in range(args.repeats):
            torch_s = timed([sys.executable, "-c", "import torch"])
            cli_s = timed([*MEGASPEC, "--version"])
            rows.append((*one_apply(tmp), torch_s, cli_s))
        for wall, receipt_s, loop_s, torch_s, cli_s in rows:
            print(f"apply {wall:.2f} s (receipt wall {receipt_s:.2f} s, loop {loop_s:.2f} s); "
                  f"floors: import torch {torch_s:.2f} s, megaspec --version {cli_s:.2f} s")
        median = statistics.median(r[0] for r in rows)
        print(f"median apply {median:.2f} s over {len(rows)} runs (goal < 8 s: {'met' if median < 8 else 'NOT met'})")


if __name__ == "__main__":
    main()
