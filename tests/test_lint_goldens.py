"""Golden tests for the lint rules, through the real pipeline (`check_spec` -> concise report).

`tests/golden/lint/MS###_<slug>.yaml` must produce exactly `MS###_<slug>.out` and only its own
code; every spec under `tests/golden/ok/`, `specs/` and `examples/` must lint clean.
`MEGASPEC_UPDATE_GOLDENS=1` rewrites the `.out` files; review the diff.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.report import render_report
from tests.conftest import GOLDEN_DIR, REPO_ROOT, assert_golden

LINT_CASES = sorted((GOLDEN_DIR / "lint").glob("*.yaml"))
_CODE_IN_OUTPUT = re.compile(r"^\S+:\d+:\d+: \w+\[(MS\d{3})\]", re.MULTILINE)


def _is_spec(path: Path) -> bool:
    """Whether a YAML file is a megaspec spec (examples/ also holds CI and pre-commit configs)."""
    return re.search(r"^megaspec:", path.read_text(encoding="utf-8"), re.MULTILINE) is not None


def _ok_cases() -> list[Path]:
    ok = sorted((GOLDEN_DIR / "ok").glob("*.yaml"))
    specs = sorted(p for p in (REPO_ROOT / "specs").glob("*.yaml") if not p.name.startswith("_"))
    examples = sorted(p for p in (REPO_ROOT / "examples").rglob("*.y*ml")
                      if not p.name.startswith("_") and _is_spec(p))
    return ok + specs + examples


def _concise(path: Path) -> str:
    shown = path.relative_to(REPO_ROOT).as_posix()
    checked = check_spec(path, display=shown)
    return render_report("concise", checked.diagnostics, texts=checked.smap.texts, num_files=1)


@pytest.mark.parametrize("case", LINT_CASES, ids=lambda p: p.stem)
def test_lint_golden(case: Path) -> None:
    actual = _concise(case)
    assert_golden(case.with_suffix(".out"), actual)
    own_code = case.name[:5]
    assert set(_CODE_IN_OUTPUT.findall(actual)) == {own_code}, f"{case.name} must trigger only {own_code}"


@pytest.mark.parametrize("case", _ok_cases(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_ok_spec_lints_clean(case: Path) -> None:
    assert _concise(case) == ""


def test_every_failing_golden_has_an_output_file() -> None:
    assert LINT_CASES, "no lint goldens found"
    missing = [p.name for p in LINT_CASES if not p.with_suffix(".out").exists()]
    assert missing == []
