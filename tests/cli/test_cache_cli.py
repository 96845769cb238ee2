"""`megaspec cache seed` refuses, with a fix, what it cannot seed; `explain` says how to make a seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


SPEC = (ROOT / "specs" / "cpu-local.yaml").read_text()
COMPILED = SPEC.replace("compile: false", "compile: true")


@pytest.mark.parametrize(("text", "says"), [
    (COMPILED, "sets no `cache.seed`"),
    (SPEC + "cache: {policy: warm, seed: /tmp/s}\n", "`train.compile: false`: there is no compile to seed"),
    (COMPILED.replace("target: local", "target: modal").replace("  ranks: 2\n", "  gpu: H100:2\n"),
     "runs on Modal GPUs"),
])
def test_what_cannot_be_seeded_is_refused_with_a_fix(tmp_path, text, says):
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    result = run("cache", "seed", str(spec))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert says in result.output and "= help:" in result.output, result.output


@pytest.mark.parametrize("code", ["MS807", "MS812", "MS206", "MS803"])
def test_explain_of_seed_codes_says_how_to_make_one(code):
    result = run("explain", code)
    assert result.exit_code == 0 and "megaspec cache seed SPEC" in result.output
