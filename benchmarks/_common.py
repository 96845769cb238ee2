"""What the benchmark scripts share: the repository root, the real megaspec command line, a timed run
of it that stops the benchmark when the command fails (a failed command has no meaningful time),
and one `apply` into a fresh runs folder. Scripts run as `python benchmarks/NAME.py` import it as
`_common` (their own folder is first on the path)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MEGASPEC = (sys.executable, "-c", "from megaspec.compiler.cli import main; main()")


def arguments(doc: str, *, repeats: int) -> argparse.ArgumentParser:
    """A benchmark's command line: the first line of its docstring as the help, and `--repeats`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=repeats, help=f"measurements to take (default {repeats})")
    return parser


def timed(cmd: list[str], cwd: Path = ROOT) -> float:
    """Seconds `cmd` took; exits the benchmark with its output when it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return time.perf_counter() - start


def megaspec_s(*args: str, cwd: Path = ROOT) -> float:
    """Seconds `megaspec ARGS` took in `cwd`."""
    return timed([*MEGASPEC, *args], cwd)


def apply_receipt(spec: str, tmp: Path, cwd: Path = ROOT) -> tuple[float, dict[str, Any]]:
    """`megaspec apply SPEC` into a fresh runs folder under `tmp`: its wall time and its (ok) receipt."""
    runs = tmp / f"runs-{time.monotonic_ns()}"
    wall = megaspec_s("apply", spec, "--runs-dir", str(runs), "-o", str(tmp / "build"), "--no-progress", cwd=cwd)
    receipt = json.loads(next(runs.glob("*/receipt.json")).read_text())
    assert receipt["status"] == "ok", receipt["error"]
    return wall, receipt
