"""ARCHITECTURE.md's table "one decision in one place" is checked where it can be: every module and
name it points at exists, and for the derived values whose inputs can be recognised in the source, the
named function is the only place that combines them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = [p for part in ("compiler", "runtime") for p in sorted((ROOT / part).rglob("*.py"))]
# Backticked words of the table that are values or fields, not names to look up in the module.
NOT_NAMES = {"H100!", "A100-40GB", "!", "resources.gpu", "schema_version", "UPGRADES", "train.seq_len",
             "max_seq_len", "train.precision"}


def table_rows() -> list[tuple[str, str]]:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    table = text.split("## One decision in one place", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return [(what.strip("| "), where.strip("| ")) for what, where in rows[1:]]


def module_file(token: str) -> Path | None:
    """`spec/topology.py` (compiler/), `runtime/contract/plan.py`, `codes.py` -> the file, else None."""
    if not token.endswith(".py"):
        return None
    for base in (ROOT, ROOT / "compiler"):
        if (base / token).is_file():
            return base / token
    raise AssertionError(f"ARCHITECTURE.md names `{token}`, which is not in the repository")


def defined_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{n.name}" for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {t.id for t in ast.walk(target) if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize(("what", "where"), table_rows(), ids=lambda v: v[:40])
def test_every_module_and_name_in_the_table_exists(what, where):
    module = None
    for token in re.findall(r"`([^`]+)`", re.sub(r"\([^()]*\)", "", where)):  # a parenthesis is prose
        if token in NOT_NAMES or " " in token or token.startswith(("EXIT_", "128")):
            continue
        found = module_file(token)
        if found is not None:
            module = found
            continue
        assert module is not None, f"`{token}` in the row `{what}` follows no module"
        name = token.removesuffix("()")
        assert name in defined_names(module), f"`{name}` is not defined in {module.relative_to(ROOT)}"


# (what, a pattern that combines the inputs, the one file allowed to): the function of the table row is
# the only code that derives the value from its inputs.
ONE_PLACE = [
    ("the sequence length default", r"seq_len\s+or\b|\bor\s+\w+\.max_seq_len|\w+\.max_seq_len if\b",
     "compiler/spec/model_dims.py"),
    ("the precision default", r"\.default_precision\b", "compiler/spec/topology.py"),
    ("tokens per step", r"global_batch\s*\*\s*[\w.]*seq_len|seq_len\s*\*\s*[\w.]*global_batch",
     "runtime/contract/plan.py"),
    ("the run id fallback", r"run\.run_id\s+or\b", "runtime/contract/rundir.py"),
    ("the stage of a code", r"def stage_of\b", "compiler/codes.py"),
    ("the rename of an atomic write", r"os\.replace\(|tempfile\.mkstemp\(", "runtime/contract/files.py"),
    ("an artifact's version check", r"\.get\(\"schema_version\"\)", "runtime/contract/artifact.py"),
]


@pytest.mark.parametrize(("what", "pattern", "home"), ONE_PLACE, ids=[w for w, _, _ in ONE_PLACE])
def test_a_derived_value_is_computed_in_its_one_place(what, pattern, home):
    regex = re.compile(pattern)
    sites = sorted({str(p.relative_to(ROOT)) for p in PRODUCT if regex.search(p.read_text(encoding="utf-8"))})
    assert sites == [home], f"{what}: {sites}"
