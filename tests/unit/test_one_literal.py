"""One decision in one place, for value lists: a set of choices (a `Literal` of two or more values) is
written once in product code; the Spec and the Plan take theirs from runtime/contract/vocabulary.py."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def literal_sets() -> dict[frozenset, list[str]]:
    found: dict[frozenset, list[str]] = defaultdict(list)
    for path in sorted(p for part in ("compiler", "runtime") for p in (ROOT / part).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "Literal":
                items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                values = [i.value for i in items if isinstance(i, ast.Constant)]
                if len(values) == len(items) >= 2:
                    found[frozenset(values)].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_each_set_of_choices_is_written_once():
    repeated = {tuple(sorted(map(str, k))): v for k, v in literal_sets().items() if len(v) > 1}
    assert not repeated, repeated
