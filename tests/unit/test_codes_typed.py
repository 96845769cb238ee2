"""Codes are values of a table on both halves, never text to match: every MS8xx the runtime writes is in
`runtime/contract/codes.py` (a receipt refuses any other), every stage code the compiler writes is a
`Code` of `compiler/codes.py`, and an internal error carries its code instead of spelling it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from megaspec.compiler.codes import GENERATED_CODE_DOES_NOT_PARSE, INTERNAL_ERROR
from megaspec.compiler.commands.compile import build_crashed
from megaspec.compiler.diagnostics import InternalError
from megaspec.runtime.contract import errors
from megaspec.runtime.contract.codes import RUNTIME_CODES
from megaspec.runtime.contract.receipt import RunError

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"MS\d{3}")


def _code_literals(folder: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value):
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node.value))
    return found


def test_every_code_the_runtime_writes_is_in_its_table():
    unknown = [(where, code) for where, code in _code_literals("runtime") if code not in RUNTIME_CODES]
    assert not unknown
    failures = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.RunFailure)]
    assert failures and all(c.code in RUNTIME_CODES for c in failures)


def test_a_receipt_error_refuses_a_code_without_a_name():
    assert RunError(code="MS803", stage="train", rank=0, step=3, message="m").rule == "rank-stalled"
    with pytest.raises(ValueError, match="MS899"):
        RunError(code="MS899", stage="train", rank=0, step=3, message="m")


def test_the_compiler_writes_stage_codes_from_its_table_only():
    """No `"MS9..."` spelled in a stage: the codes of compiler/codes.py are the only ones outside the rules."""
    spelled = [(where, code) for where, code in _code_literals("compiler")
               if not where.startswith(("compiler/codes.py", "compiler/lint/rules/", "compiler/lint/receipt_rules.py",
                                        "compiler/lint/stage_rules.py", "compiler/runs/receipt_view.py"))]
    assert not [s for s in spelled if s[1][2] in "09"], spelled


@pytest.mark.parametrize("code", [GENERATED_CODE_DOES_NOT_PARSE, INTERNAL_ERROR])
def test_an_internal_error_is_reported_with_its_own_code(code):
    status, text = build_crashed("specs/x.yaml", str(InternalError("it broke", code)), code)
    assert status == 3 and f"error[{code.code}]" in text and text.count("MS9") == 1
