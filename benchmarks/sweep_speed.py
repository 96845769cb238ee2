"""Sweep speed: a 1,000-run template expanded and previewed, and `report` over 1,000 receipts.

Goal: each under 3 s. Three timings, each the median of `--repeats` runs of the real CLI:
- `megaspec sweep T --dry-run`: expand, then lower and cost every run in memory;
- `megaspec apply T --max-cost 0`: expand, write and lint every run's spec, lower each, print the
  preview table, then stop at the cost gate (nothing launched; the sweep directory is removed);
- `megaspec report S`: a sweep directory of 1,000 finished runs (sweep.json, manifests, plans,
  receipts and 20-step progress files copied from one run's shape), tables and plots.

Run: `python benchmarks/sweep_speed.py [--repeats 3]`. CPU time (user + sys of the child) is printed
beside the wall time, and each command runs right after the floor it stands on (`megaspec --version`),
with the load average printed: on a shared machine the wall time also measures the other tenants.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests/ helpers build the receipts' shape

TEMPLATE = """megaspec: 1
name: big
lane: train
target: modal
resources: {gpu: "H100:8", exact: true, timeout: 1h}
image: {python: "3.11", packages: [torch==2.8.0, numpy==2.2.6]}
cache: {policy: warm}
preset: dense-125m
train: {steps: 200, warmup_steps: 20, global_batch: 64, micro_batch: 8, seq_len: 1024, compile: false}
data: {source: synthetic}
sweep:
  matrix:
    train.lr: [1.0e-4, 2.0e-4, 3.0e-4, 4.0e-4, 5.0e-4, 6.0e-4, 7.0e-4, 8.0e-4, 9.0e-4, 1.0e-3]
    train.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    train.warmup_steps: [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
"""


def run_cli(args: list[str], cwd: Path, expect: int) -> tuple[float, float]:
    """(wall s, CPU s) of one CLI run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from megaspec.compiler.cli import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != expect:
        sys.exit(f"`megaspec {' '.join(args)}` exited {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fake_sweep(root: Path, num_runs: int) -> Path:
    """A sweep directory of `num_runs` finished CPU runs, in the files' real formats."""
    from megaspec.compiler.runs import manifest as mf
    from megaspec.compiler.runs.sweep_manifest import SweepManifest, SweepRunEntry, write_sweep
    from tests.runtime.conftest import make_plan
    from tests.unit.test_manifest import make_manifest, make_receipt

    sweep_dir = root / "big-20260102-030405-abcd"
    lrs = [round(1e-4 * (1 + i % 10), 6) for i in range(num_runs)]
    entries = []
    for i, lr in enumerate(lrs):
        run_id = f"big-{i:04d}-20260102-030405-abcd"
        run_dir = sweep_dir / run_id
        m = make_manifest("running", "local").model_copy(update={"run_id": run_id})
        mf.write_manifest(run_dir, mf.advance(m, "ok", receipt="receipt.json"))
        (run_dir / "plan.json").write_text(make_plan(train={"lr": lr, "seed": i}).to_json())
        losses = [6.0 - 0.05 * s * (1 + lr * 1e3) for s in range(20)]
        receipt = {**make_receipt(), "run_id": run_id, "name": f"big-{i:04d}", "losses": losses,
                   "metrics": {"tokens_per_s": 1000.0 + i, "final_loss": losses[-1], "min_loss": min(losses)}}
        (run_dir / "receipt.json").write_text(json.dumps(receipt))
        (run_dir / "progress.jsonl").write_text("".join(  # runtime/contract/progress.py's events, one per step
            json.dumps({"step": s + 1, "loss": v, "losses": [v], "tokens_per_s": 1000.0 + i, "eta_s": 19.0 - s}) + "\n"
            for s, v in enumerate(losses)))
        entries.append(SweepRunEntry(name=f"big-{i:04d}", values={"train.lr": lr, "train.seed": i},
                                     spec=f"{run_id}.yaml", run_id=run_id, run_dir=run_id, state="ok"))
    write_sweep(sweep_dir, SweepManifest(sweep_id=sweep_dir.name, source="big.yaml", source_sha256=None,
                                         matrix={"train.lr": sorted(set(lrs)), "train.seed": list(range(num_runs))},
                                         target="local", created_at="2026-01-02T03:04:05Z", runs=entries))
    return sweep_dir


def measure(label: str, args: list[str], cwd: Path, expect: int, repeats: int) -> None:
    """Each repeat runs the floor (`megaspec --version`: interpreter and CLI start-up) just before the
    command, so both see the same machine; the goal is judged on the median wall time."""
    runs, floors = [], []
    for _ in range(repeats):
        floors.append(run_cli(["--version"], cwd, 0))
        runs.append(run_cli(args, cwd, expect))
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    floor_wall, floor_cpu = statistics.median(f[0] for f in floors), statistics.median(f[1] for f in floors)
    print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU (median of {repeats}; wall "
          f"{', '.join(f'{r[0]:.2f}' for r in runs)}); floor `megaspec --version` {floor_wall:.2f} s wall, "
          f"{floor_cpu:.2f} s CPU (x{wall / floor_wall:.1f} wall)  goal < 3 s: {'met' if wall < 3 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-receipts", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "big.yaml").write_text(TEMPLATE)
        measure("sweep --dry-run, 1,000 runs (expand + lower + cost each)", ["sweep", "big.yaml", "--dry-run"],
                work, 0, args.repeats)
        measure("apply preview, 1,000 runs (expand + write + lint + lower + cost each, stop at the gate)",
                ["apply", "big.yaml", "--max-cost", "0"], work, 1, args.repeats)
        assert not list((work / "runs").glob("*")), "the refused sweep left files behind"
        sweep_dir = fake_sweep(work / "runs", args.num_receipts)
        measure(f"report over {args.num_receipts:,} receipts (tables + 4 plots)", ["report", str(sweep_dir)],
                work, 0, args.repeats)
        env_note = os.environ.get("MPLBACKEND", "Agg (set by megaspec)")
        print(f"matplotlib backend: {env_note}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
