"""What the user waits for `megaspec apply specs/cpu-local.yaml`, and where the time goes.

Printed per run: the wall time of the whole command (what the user waits), the receipt's
`wall_time_s` (launcher start to receipt: worker start-up, rendezvous, 40 steps, teardown) and the
training loop alone (steps x the median step time), beside two floors measured in the same session:
a fresh `python -c "import torch"` and `megaspec --version`.
Goal: the whole command under 8 s on the project's 2-core machine.
Run: `python benchmarks/apply_speed.py [--repeats 3]`.
"""

from __future__ import annotations

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
            rows.append((*one_apply(tmp), torch_s, cli_s))
        for wall, receipt_s, loop_s, torch_s, cli_s in rows:
            print(f"apply {wall:.2f} s (receipt wall {receipt_s:.2f} s, loop {loop_s:.2f} s); "
                  f"floors: import torch {torch_s:.2f} s, megaspec --version {cli_s:.2f} s")
        median = statistics.median(r[0] for r in rows)
        print(f"median apply {median:.2f} s over {len(rows)} runs (goal < 8 s: {'met' if median < 8 else 'NOT met'})")


if __name__ == "__main__":
    main()
