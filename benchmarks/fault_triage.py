"""Is the rank at fault named, in every stage, every trial? A tally of failure drills on CPU/gloo.

For each stage of the receipt and each action (kill -9, stall, raise), N runs of 2 ranks where one
rank fails by a `MEGASPEC_FAULT` drill; a trial is right when the receipt names that rank and
stage (for `teardown`: the MS804 diagnostic, the run itself is ok), and, for a failure in
training, when the receipt still carries the steps and losses completed before it.
Goal: every trial right.

    python benchmarks/fault_triage.py --trials 3
    python benchmarks/fault_triage.py --trials 1 --stages checkpoint,train --actions kill --rank 0
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from megaspec.runtime.contract.receipt import STAGES  # noqa: E402
from megaspec.runtime.launch.entry import run_plan  # noqa: E402
from tests.runtime.conftest import make_plan  # noqa: E402  (the same plan fixture the tests use)

STEPS, FAIL_STEP, CKPT_EVERY = 6, 4, 3
DRILL_STEP = {"train": FAIL_STEP, "checkpoint": CKPT_EVERY}
STEPS_BEFORE = {"train": FAIL_STEP - 1, "checkpoint": CKPT_EVERY}


def trial(stage: str, action: str, rank: int, root: Path) -> tuple[bool, str]:
    step = DRILL_STEP.get(stage)
    os.environ["MEGASPEC_FAULT"] = f"{rank}:{stage}:{step}:{action}" if step else f"{rank}:{stage}:{action}"
    plan = make_plan(2, steps=STEPS, checkpoint={"every": CKPT_EVERY, "resume": "never"},
                     distributed={"init_timeout": 10, "timeout": 5}, plan={"checkpoint": {"dir": "ckpt"}})
    receipt = run_plan(plan, root)
    blamed = receipt["error"] or next((d for d in receipt["diagnostics"] if d["code"] == "MS804"), None)
    if blamed is None:
        return False, f"status {receipt['status']}, nobody named"
    named = (blamed["rank"], blamed["stage"])
    ok = named == (rank, stage)
    record = ""
    if stage in STEPS_BEFORE:
        done, num_losses = receipt["steps"]["completed"], len(receipt["losses"])
        ok = ok and done >= STEPS_BEFORE[stage] and num_losses >= STEPS_BEFORE[stage]
        record = f", completed {done}, {num_losses} losses"
    return ok, f"named rank {named[0]} stage {named[1]} ({blamed['code']}){record}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--actions", default="kill,sleep,raise")
    parser.add_argument("--rank", type=int, default=1, help="the rank that fails")
    args = parser.parse_args()
    total = right = 0
    with tempfile.TemporaryDirectory() as tmp:
        for stage in args.stages.split(","):
            for action in args.actions.split(","):
                results = []
                for n in range(args.trials):
                    start = time.monotonic()
                    ok, what = trial(stage, action, args.rank, Path(tmp) / f"{stage}-{action}-{n}")
                    results.append(ok)
                    print(f"  {stage:>10} {action:<5} #{n}: {'ok   ' if ok else 'WRONG'} {what} "
                          f"[{time.monotonic() - start:.1f} s]", flush=True)
                total, right = total + len(results), right + sum(results)
                print(f"{stage:>10} {action:<5} {sum(results)}/{len(results)} named correctly", flush=True)
    print(f"all: {right}/{total} trials named the failing rank and stage and kept the record")
    return 0 if right == total else 1


if __name__ == "__main__":
    sys.exit(main())
