"""Paired A/B of `lint` and `compile` of one spec against an earlier commit, each a fresh process.

    python benchmarks/front_end_ab.py [--base 3385b35] [--spec specs/cpu-local.yaml] [--repeats 15]

Both sides run in this interpreter with the same installed packages: the base commit's `compiler/`
and `runtime/` come out of `git archive` into a temporary folder, and each side is put first on the
path as the `megaspec` package (PYTHONPATH), this tree's as A, the base's as B. The runs alternate
A B A B and the ratio A/B is taken pair by pair (the VM's speed drifts 20-40% within minutes), on
CPU seconds (user + system of the finished child, the OS's accounting: less moved by other load than
wall time) and on wall seconds. Compiled modules are cached, as in an installed package (unless
`--no-bytecode`). Goal: each command's median CPU ratio at most 1.00.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from _common import ROOT, arguments


def side(folder: Path, tree: Path, bytecode: bool) -> dict[str, str]:
    """An environment whose `megaspec` package is `tree`'s compiler/ and runtime/ (linked under `folder`).

    With `bytecode`, compiled modules are cached under `folder` (as an installed package has them);
    without, every run compiles megaspec's modules from source (PYTHONDONTWRITEBYTECODE=1)."""
    package = folder / "megaspec"
    package.mkdir(parents=True)
    for part in ("compiler", "runtime"):
        (package / part).symlink_to(tree / part)
    env = {**os.environ, "PYTHONPATH": str(folder), "PYTHONPYCACHEPREFIX": str(folder / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env if bytecode else {**env, "PYTHONDONTWRITEBYTECODE": "1"}


def extract(rev: str, into: Path) -> Path:
    archive = into / "base.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", rev, "compiler", "runtime"], cwd=ROOT, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def cpu_and_wall(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr.read().decode() if proc.stderr else ''}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = arguments(__doc__, repeats=15)
    parser.add_argument("--base", default="3385b35", help="the commit to compare with (default 3385b35)")
    parser.add_argument("--spec", default="specs/cpu-local.yaml")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="compile megaspec's modules from source in every run (default: cached, as installed)")
    args = parser.parse_args()
    spec = str((ROOT / args.spec).resolve())
    with tempfile.TemporaryDirectory(prefix="megaspec-ab-") as name:
        tmp = Path(name)
        bytecode = not args.no_bytecode
        envs = {"A": side(tmp / "a", ROOT, bytecode), "B": side(tmp / "b", extract(args.base, tmp), bytecode)}
        main_cmd = [sys.executable, "-c", "from megaspec.compiler.cli import main; main()"]
        commands = {"lint": lambda s: [*main_cmd, "lint", spec],
                    "compile": lambda s: [*main_cmd, "compile", spec, "-o", str(tmp / f"build-{s}")]}
        for verb, command in commands.items():
            for s in "AB":  # one unmeasured run each: disk caches and .pyc files
                cpu_and_wall(command(s), envs[s])
            pairs = [[cpu_and_wall(command(s), envs[s]) for s in "AB"] for _ in range(args.repeats)]
            cpu = statistics.median(a[0] / b[0] for a, b in pairs)
            wall = statistics.median(a[1] / b[1] for a, b in pairs)
            med = {s: statistics.median(p[i][0] for p in pairs) for i, s in enumerate("AB")}
            verdict = "met" if cpu <= 1.0 else "NOT met"
            print(f"{verb}: cpu A {med['A']:.3f} s, B ({args.base}) {med['B']:.3f} s; median paired ratio A/B "
                  f"cpu {cpu:.3f}, wall {wall:.3f} over {len(pairs)} pairs (goal cpu <= 1.00: {verdict})")


if __name__ == "__main__":
    main()
