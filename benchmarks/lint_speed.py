"""Benchmark of the lint front end: one spec as a fresh process, and 500 specs against check-jsonschema.

    python benchmarks/lint_speed.py [--spec specs/h200x8.yaml] [--num-specs 500] [--repeats 11]

Goals: one spec under 0.3 s wall; 500 specs no slower than `check-jsonschema --schemafile schema.json`
over the same files (which checks far less: no spans, no extends, no semantic rules).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from megaspec.compiler.lint.batch import workers_for

ROOT = Path(__file__).resolve().parent.parent
GPUS = ["H100:8", "H200:8", "B200:8", "A100-80GB:4", "L40S:2"]
PRESETS = ["tiny", "dense-125m", "dense-350m", "dense-1b"]


# What any click + pydantic tool pays before its own code runs: building and using one model pulls in
# pydantic's schema machinery and its plugin scan (importlib.metadata), which `import` alone does not.
MODEL_FLOOR = """\
import os
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
import click
from pydantic import BaseModel, Field
class One(BaseModel):
    steps: int = Field(1, ge=1)
One.model_validate({"steps": 2})
"""


def megaspec_cmd() -> list[str]:
    exe = shutil.which("megaspec")
    return [exe] if exe else [sys.executable, "-m", "megaspec.compiler.cli"]


def run_once(cmd: list[str]) -> float:
    """Wall seconds of one run (exit codes 0 and 1 both count as a finished lint)."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({done.returncode}): {done.stderr[-400:]}")
    return elapsed


def interleaved(cmds: dict[str, list[str]], repeats: int) -> dict[str, list[float]]:
    """Each command once per round, `repeats` rounds: a slow spell of a shared VM hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            times[name].append(run_once(cmd))
    return times


def spec_text(i: int) -> str:
    """A valid spec that varies in GPU, preset, batch and sections, like a real specs/ folder."""
    gpu = GPUS[i % len(GPUS)]
    count = int(gpu.split(":")[1])
    micro = 1 + i % 4
    preset = PRESETS[i % len(PRESETS)]
    exact = "\n  exact: true" if gpu.startswith("H100") else ""
    return f"""\
megaspec: 1
name: bench-{i:04d}
lane: train
target: modal
resources:
  gpu: "{gpu}"{exact}
  timeout: {1 + i % 5}h
image:
  python: "3.11"
  packages: [torch==2.8.0, numpy==2.2.6]
volumes:
  cache: {{name: ms-cache-{i % 7}, mount: /vol/cache}}
  checkpoints: {{name: ms-ckpt-{i % 11}, mount: /vol/ckpt}}
cache:
  policy: require-seed
  seed: /vol/cache/seed
preset: {preset}
train:
  steps: {100 + i}
  warmup_steps: 10
  global_batch: {micro * count * (1 + i % 3)}
  micro_batch: {micro}
  seq_len: {128 if preset == 'tiny' else 1024}
  lr: 3.0e-4
  compile: true
checkpoint: {{every: 50, resume: auto}}
distributed: {{timeout: 30m, debug: INFO}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/h200x8.yaml")
    parser.add_argument("--num-specs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()

    # A regular `pip install` leaves bytecode; an editable one under PYTHONDONTWRITEBYTECODE=1 (set on
    # some CI images) would recompile every module on every start. Time what users run.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "compiler", "runtime"], cwd=ROOT,
                   stdout=subprocess.DEVNULL, check=True)
    one = interleaved({
        "megaspec": [*megaspec_cmd(), "lint", "--no-config", args.spec],
        "check-jsonschema": ["check-jsonschema", "--schemafile", str(ROOT / "schema.json"), args.spec],
        "floor": [sys.executable, "-c", "from pydantic import BaseModel; import click"],
        "model floor": [sys.executable, "-c", MODEL_FLOOR],
    }, args.repeats)
    med = {name: statistics.median(t) for name, t in one.items()}
    print(f"one spec, fresh process: median {med['megaspec']:.3f} s, fastest {min(one['megaspec']):.3f} s "
          f"of {args.repeats}  (goal < 0.3 s)")
    print(f"  same spec, check-jsonschema: median {med['check-jsonschema']:.3f} s "
          f"(ratio {med['megaspec'] / med['check-jsonschema']:.2f})")
    print(f"  floor, `from pydantic import BaseModel; import click`: median {med['floor']:.3f} s "
          f"(megaspec lint = {med['megaspec'] / med['floor']:.2f} x the floor)")
    print(f"  model floor, click + one validated pydantic model: median {med['model floor']:.3f} s "
          f"(megaspec lint = {med['megaspec'] / med['model floor']:.2f} x, "
          f"+{1e3 * (med['megaspec'] - med['model floor']):.0f} ms)")
    with tempfile.TemporaryDirectory(prefix="megaspec-bench-") as tmp:
        folder = Path(tmp)
        files = []
        for i in range(args.num_specs):
            path = folder / f"spec-{i:04d}.yaml"
            path.write_text(spec_text(i))
            files.append(str(path))
        many = interleaved({
            "megaspec": [*megaspec_cmd(), "lint", "--no-config", "--format", "json", str(folder)],
            "megaspec -j1": [*megaspec_cmd(), "lint", "--no-config", "--format", "json", "-j1", str(folder)],
            "check-jsonschema": ["check-jsonschema", "--schemafile", str(ROOT / "schema.json"), *files],
        }, 3)
        ours, theirs = (statistics.median(many[name]) for name in ("megaspec", "check-jsonschema"))
    print(f"{args.num_specs} specs, megaspec lint --format json (median of 3, {workers_for(args.num_specs, None)}"
          f" worker processes): {ours:.3f} s")
    serial = statistics.median(many["megaspec -j1"])
    print(f"{args.num_specs} specs, megaspec lint -j1 (one process):     {serial:.3f} s")
    print(f"{args.num_specs} specs, check-jsonschema:                  {theirs:.3f} s")
    print(f"ratio megaspec / check-jsonschema: {ours / theirs:.2f}  (goal <= 1.0); one process: {serial / theirs:.2f}")


if __name__ == "__main__":
    main()
