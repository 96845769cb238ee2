"""What the user waits for `megaspec apply specs/cpu-local.yaml`, and where the time goes.

Printed per run: the wall time of the whole command (what the user waits), the receipt's
`wall_time_s` (launcher start to receipt: rank start-up, rendezvous, 40 steps, teardown) and the
training loop alone (steps x the median step time), beside two floors measured in the same
session, interleaved: a fresh `python -c "import torch"` and `megaspec --version`. The ratio that
load changes least is the overhead (apply minus the loop: CLI, lint, imports, rank start-up,
teardown) over the `import torch` floor; the load average is printed with it.
Goal: the whole command under 8 s on the project's 2-core machine.
Run: `python benchmarks/apply_speed.py [--repeats 3]`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from _common import apply_receipt, arguments, megaspec_s, timed


def one_apply(tmp: Path) -> tuple[float, float, float]:
    wall, receipt = apply_receipt("specs/cpu-local.yaml", tmp)
    m = receipt["metrics"]
    return wall, m["wall_time_s"], m["step_time_p50_s"] * receipt["steps"]["completed"]


def main() -> None:
    args = arguments(__doc__, repeats=3).parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rows = []
        for _ in range(args.repeats):
            torch_s = timed([sys.executable, "-c", "import torch"])
            cli_s = megaspec_s("--version")
            rows.append((*one_apply(tmp), torch_s, cli_s, os.getloadavg()[0]))
        for wall, receipt_s, loop_s, torch_s, cli_s, load in rows:
            print(f"apply {wall:.2f} s (receipt wall {receipt_s:.2f} s, loop {loop_s:.2f} s; overhead "
                  f"{wall - loop_s:.2f} s = {(wall - loop_s) / torch_s:.2f} x import torch); floors: import torch "
                  f"{torch_s:.2f} s, megaspec --version {cli_s:.2f} s; load average {load:.1f}")
        median = statistics.median(r[0] for r in rows)
        ratio = statistics.median((r[0] - r[2]) / r[3] for r in rows)
        print(f"median apply {median:.2f} s over {len(rows)} runs, overhead {ratio:.2f} x import torch "
              f"(goal < 8 s: {'met' if median < 8 else 'NOT met'})")


if __name__ == "__main__":
    main()
