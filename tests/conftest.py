"""Shared test helpers: golden-file comparison and output normalization, the megaspec command line,
and the short CPU spec the tests that run or expand a spec start from.

Goldens are files a user could have written; `MEGASPEC_UPDATE_GOLDENS=1` rewrites them instead of
comparing, and the diff is then reviewed like any other change (actionlint `testdata/`).
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from megaspec.compiler import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
UPDATE_GOLDENS = os.environ.get("MEGASPEC_UPDATE_GOLDENS") == "1"

# The version as a whole token, so "0.1.0" does not also rewrite "10.1.0" or "0.1.0.dev1".
_VERSION = re.compile(rf"(?<![\w.]){re.escape(__version__)}(?![\w.])")


def normalize(text: str) -> str:
    """Replace what changes between releases and machines: the version and the repo's absolute path."""
    text = _VERSION.sub("[VERSION]", text)
    return text.replace(REPO_ROOT.as_posix(), "[ROOT]").replace(str(REPO_ROOT), "[ROOT]")


def assert_golden(path: Path, actual: str) -> None:
    """Compare `actual` with the golden file at `path`, or rewrite it under MEGASPEC_UPDATE_GOLDENS=1."""
    if UPDATE_GOLDENS:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual.encode("utf-8"))  # bytes: no newline translation either way
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing; run with MEGASPEC_UPDATE_GOLDENS=1 to create it")
    expected = path.read_bytes().decode("utf-8")
    if actual != expected:
        diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                    fromfile=f"{path} (expected)", tofile="actual")
        pytest.fail("output differs from the golden file (MEGASPEC_UPDATE_GOLDENS=1 rewrites it):\n"
                    + "".join(diff), pytrace=False)


# The real console entry point, for tests that run megaspec in a process of its own.
MEGASPEC = (sys.executable, "-c", "from megaspec.compiler.cli import main; main()")

# A job started in the background of a non-interactive shell (`cmd &`, as CI may run the suite) ignores
# SIGINT, and every process it starts inherits that: the tests that send a real Ctrl-C to megaspec would
# see it ignored. A process with a Python handler starts its children with the default instead.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_megaspec(*args: str, cwd: Path = REPO_ROOT, timeout: float = 300, **popen: object) -> subprocess.CompletedProcess:
    """`megaspec ARGS` in `cwd`; its output as text. `popen` goes to subprocess.run (env, preexec_fn)."""
    return subprocess.run([*MEGASPEC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **popen)


# The smallest clean spec users could write (lint passes it): the tests of lint's stages append to it.
CLEAN_SPEC = """\
megaspec: 1
name: demo
preset: tiny
target: local
image:
  packages: [torch==2.8.0]
"""


def tiny_cpu_spec(name: str, *lines: str, train: str = "") -> str:
    """A spec users could write for a run of seconds: the tiny model on two CPU ranks (gloo), four
    steps of eight sequences. `train` adds keys to its `train:` mapping; `lines` are more top-level YAML."""
    more = f", {train}" if train else ""
    return "\n".join([
        "megaspec: 1", f"name: {name}", "target: local", "resources: {ranks: 2}", "preset: tiny",
        f"train: {{steps: 4, warmup_steps: 1, global_batch: 8, micro_batch: 2, seq_len: 32, precision: fp32, "
        f"compile: false{more}}}", *lines, ""])
