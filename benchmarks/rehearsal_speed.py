"""Rehearsal speed: `megaspec apply SPEC --target local` for every spec in specs/ and examples/, Enter to exit.

A GPU spec becomes its rehearsal (the same world size, seq_len and code paths on CPU ranks:
`compiler/codegen/rehearsal.py`); a local spec runs as written; a sweep template runs each of its runs.
Goal: every spec in specs/ rehearses in under 60 s on this machine. Prints one row per spec with the
load average beside it (the 2 cores are shared: the same rehearsal took 92 s at load 20 and 37 s at
load 11), and the receipt's world size, seq_len, steps,
compile and checkpoints, so the table shows what was kept, not only how long it took.

    python benchmarks/rehearsal_speed.py [--only specs/h200x8.yaml ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MEGASPEC, ROOT, arguments

GOAL_S = 60.0


def all_specs() -> list[Path]:
    from megaspec.compiler.lint.discover import spec_files

    return [*spec_files(ROOT / "specs"), *spec_files(ROOT / "examples")]


def rehearse(spec: Path, tmp: Path) -> dict:
    """One apply into a fresh runs folder: wall time, exit status and what its receipts say."""
    runs = tmp / f"runs-{time.monotonic_ns()}"
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([*MEGASPEC, "apply", str(spec), "--target", "local", "--runs-dir", str(runs), "-o",
                           str(tmp / "build"), "--no-progress", "--yes"], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    receipts = [{**json.loads(p.read_text()), "plan": json.loads((p.parent / "plan.json").read_text())}
                for p in sorted(runs.rglob("receipt.json"))]
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [""]
    return {"wall_s": wall, "load": load, "code": done.returncode, "receipts": receipts, "said": last[0]}


def row(spec: Path, r: dict) -> str:
    name = spec.relative_to(ROOT).as_posix()
    if not r["receipts"]:
        return f"{name:<36} {'-':<10} {r['wall_s']:>7.1f} {r['load']:>5.1f}  exit {r['code']}: {r['said'][:90]}"
    first = r["receipts"][0]
    plan = first["plan"]["train"]
    kind = ("rehearsal" if first.get("rehearsal") else "local") + (f" x{len(r['receipts'])}" if len(r["receipts"]) > 1 else "")
    states = ",".join(sorted({x["status"] for x in r["receipts"]}))
    saved = (first.get("checkpoint") or {}).get("saved_steps") or []
    steps = first.get("steps") or {}  # none in the bench lane
    kept = (f"world {first['distributed']['world_size']}, seq {plan.get('seq_len', '?')}, "
            f"steps {steps.get('completed', '-')}/{steps.get('planned', '-')}, "
            f"compile {'on' if plan.get('compile') else 'off'}, ckpt {saved or '-'}")
    mark = "" if r["wall_s"] < GOAL_S else "  OVER 60 s"
    return f"{name:<36} {kind:<12} {r['wall_s']:>7.1f} {r['load']:>5.1f}  {states:<6} {kept}{mark}"


def main() -> None:
    parser = arguments(__doc__, repeats=1)
    parser.add_argument("--only", nargs="*", type=Path, default=None, help="these specs instead of every one")
    args = parser.parse_args()
    specs = [p.resolve() for p in args.only] if args.only else all_specs()
    print(f"{'spec':<36} {'kind':<12} {'wall s':>7} {'load':>5}  {'status':<6} kept")
    with tempfile.TemporaryDirectory(prefix="rehearsal-speed-") as tmp:
        for spec in specs:
            for _ in range(args.repeats):
                print(row(spec, rehearse(spec, Path(tmp))), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
