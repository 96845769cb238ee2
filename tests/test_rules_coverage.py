"""Every lint rule has a failing golden, a passing golden and a documented docstring.

A rule without a failing case may never fire; without a passing case it may fire on everything;
without its doc sections `megaspec explain` and SARIF have nothing to say about it.
"""

from __future__ import annotations

import re

import pytest

import megaspec.compiler.lint.check  # noqa: F401 - the lint driver imports every rule family
from megaspec.compiler import codes
from megaspec.compiler.lint.rules.registry import REGISTRY
from tests.conftest import GOLDEN_DIR

LINT_RULES = sorted(code for code, r in REGISTRY.items() if r.func is not None)
DOC_SECTIONS = ("Why:", "Example:", "Use instead:")


def test_every_lint_golden_is_a_registered_code_and_every_rule_has_one() -> None:
    golden_codes = {p.name[:5] for p in (GOLDEN_DIR / "lint").glob("MS*.yaml")}
    gpu_request = {codes.UNKNOWN_GPU_TYPE.code, codes.GPU_COUNT_OVER_NODE_LIMIT.code}  # decided at validation
    assert golden_codes == set(LINT_RULES) | gpu_request


def test_stage_codes_table_is_the_registry() -> None:
    """Each code a stage writes comes from `compiler/codes.py`, registered under the same name; the
    registry holds nothing else besides the lint rules and the runtime's receipt codes."""
    for code in codes.STAGE_CODES.values():
        assert (REGISTRY[code.code].name, REGISTRY[code.code].func) == (code.name, None)
    others = {c for c, r in REGISTRY.items() if r.func is None and codes.stage_of(c) is not codes.Stage.RUNTIME}
    assert others == set(codes.STAGE_CODES)


@pytest.mark.parametrize("code", LINT_RULES)
def test_rule_has_failing_golden(code: str) -> None:
    outs = [p.read_text(encoding="utf-8") for p in (GOLDEN_DIR / "lint").glob(f"{code}_*.out")]
    assert any(f"[{code}]" in out for out in outs), f"no tests/golden/lint/{code}_*.out reports {code}"


@pytest.mark.parametrize("code", LINT_RULES)
def test_rule_has_passing_golden(code: str) -> None:
    assert list((GOLDEN_DIR / "ok").glob(f"{code}_*.yaml")), f"no tests/golden/ok/{code}_*.yaml"


@pytest.mark.parametrize("code", LINT_RULES)
def test_rule_doc_has_sections(code: str) -> None:
    doc = REGISTRY[code].doc
    first, *_ = doc.splitlines()
    assert first.startswith("Checks that") and first.endswith("."), first
    positions = [doc.find(f"\n{section}") for section in DOC_SECTIONS]
    assert all(p > 0 for p in positions) and positions == sorted(positions), f"{code}: sections out of order"


@pytest.mark.parametrize("code", LINT_RULES)
def test_rule_name_is_kebab_case(code: str) -> None:
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", REGISTRY[code].name)
