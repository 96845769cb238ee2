"""Every spec in specs/ (and the own-model example's Modal twin, which ships user code into the image)
compiles to the reviewed app.py and plan.json, byte for byte, every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.codegen.render import render
from megaspec.compiler.lint.check import check_spec
from tests.conftest import GOLDEN_DIR, REPO_ROOT, assert_golden, normalize

SPECS = sorted(p.name for p in (REPO_ROOT / "specs").glob("*.yaml") if not p.name.startswith("_"))
EXAMPLES = {"own-model-h100.yaml": "examples/own-model/h100.yaml"}  # golden name -> spec


def compile_spec(name: str, monkeypatch) -> dict[str, str]:
    monkeypatch.chdir(REPO_ROOT)  # spec paths in headers and origins are repo-relative
    checked = check_spec(EXAMPLES.get(name, f"specs/{name}"))
    assert checked.spec is not None and not [d for d in checked.diagnostics if d.is_error], checked.diagnostics
    return render(plan_for(checked))


def test_every_spec_has_a_golden_and_every_golden_a_spec():
    names = sorted([*SPECS, *EXAMPLES])
    assert [name.removesuffix(".yaml") for name in names] == sorted(p.name for p in (GOLDEN_DIR / "compile").iterdir())


@pytest.mark.parametrize("name", [*SPECS, *EXAMPLES])
def test_compile_golden(name: str, monkeypatch):
    files = compile_spec(name, monkeypatch)
    for filename, text in files.items():
        assert_golden(GOLDEN_DIR / "compile" / Path(name).stem / filename, normalize(text))


@pytest.mark.parametrize("name", [*SPECS, *EXAMPLES])
def test_compile_is_deterministic(name: str, monkeypatch):
    assert compile_spec(name, monkeypatch) == compile_spec(name, monkeypatch)
