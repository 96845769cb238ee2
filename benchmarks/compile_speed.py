"""Compile speed: 1,000 generated specs through lower+render in-process, then the CLI over a directory.

Goal: under 5 s in total. Run: `python benchmarks/compile_speed.py [--num-specs 1000]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from megaspec.compiler.codegen.lower import lower
from megaspec.compiler.codegen.render import render
from megaspec.compiler.lint.batch import workers_for
from megaspec.compiler.spec.model import Spec

GPUS = ["H100:8", "H200:8", "B200:8", "H100:1", "A100-80GB:4"]
PRESETS = ["tiny", "dense-125m", "dense-1b"]


def spec_data(i: int) -> dict:
    return {"megaspec": 1, "name": f"bench-{i}", "preset": PRESETS[i % len(PRESETS)],
            "resources": {"gpu": GPUS[i % len(GPUS)], "retries": i % 3, "timeout": 600 + i},
            "volumes": {"cache": {"name": "c", "mount": "/vol/cache"}, "checkpoints": {"name": "k", "mount": "/vol/k"}},
            "secrets": ["wandb"], "train": {"steps": 100 + i, "micro_batch": 1 + i % 2, "compile": bool(i % 2)}}


def spec_yaml(i: int) -> str:
    gpu = GPUS[i % len(GPUS)]
    return (f"megaspec: 1\nname: bench-{i}\npreset: {PRESETS[i % len(PRESETS)]}\n"
            f"resources: {{gpu: \"{gpu}\", exact: true, retries: 1, timeout: 1h}}\n"
            f"image: {{packages: [torch==2.8.0, numpy==2.2.6, pydantic==2.11.9]}}\n"
            f"volumes: {{cache: {{name: c, mount: /vol/cache}}}}\n"
            f"cache: {{policy: require-seed, seed: /vol/cache/seed}}\ntrain: {{steps: {100 + i}}}\n")


def in_process(num_specs: int) -> float:
    specs = [Spec.model_validate(spec_data(i)) for i in range(num_specs)]
    start = time.perf_counter()
    for spec in specs:
        render(lower(spec, spec_path="bench.yaml", spec_sha256="0" * 64, origins={}))
    return time.perf_counter() - start


def cli_run(num_specs: int, jobs: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        specs = Path(tmp) / "specs"
        specs.mkdir()
        for i in range(num_specs):
            (specs / f"s{i:04d}.yaml").write_text(spec_yaml(i))
        jobs_args = [] if jobs is None else [f"-j{jobs}"]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "from megaspec.compiler.cli import main; main()", "compile",
                               *jobs_args, str(specs), "-o", str(Path(tmp) / "build")], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        num_built = len(list((Path(tmp) / "build").glob("*/app.py")))
        if done.returncode != 0 or num_built != num_specs:
            sys.exit(f"CLI compile failed ({done.returncode}, {num_built} built):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num-specs", type=int, default=1000)
    parser.add_argument("--num-cli-specs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    t_in = in_process(args.num_specs)
    print(f"compile stage (lower + render + ast.parse), in process: {args.num_specs} specs in {t_in:.2f} s "
          f"({1000 * t_in / args.num_specs:.2f} ms/spec)  goal < 5 s: {'met' if t_in < 5 else 'MISSED'}")
    n = args.num_cli_specs
    for label, jobs in ((f"{workers_for(n, None)} worker processes (default)", None), ("one process, -j1", 1)):
        runs = [cli_run(n, jobs) for _ in range(args.repeats)]
        t_cli = statistics.median(runs)
        print(f"end to end, `megaspec compile DIR` (lint + lower + render + atomic writes), {label}: {n} specs in "
              f"{t_cli:.2f} s median of {args.repeats} ({1000 * t_cli / n:.1f} ms/spec; runs "
              f"{', '.join(f'{r:.2f}' for r in runs)})  goal < 5 s: {'met' if t_cli < 5 else 'MISSED'}")

if __name__ == "__main__":
    main()
