"""The committed schemas are what `megaspec schema` generates, and they serve editors as the docs do:
every property described and titled by its key, every spec and base valid against the schema its
`yaml-language-server` modeline names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from megaspec.compiler.cli import cli
from megaspec.compiler.spec.json_schema import schema_text
from megaspec.compiler.spec.source import load_source

ROOT = Path(__file__).resolve().parent.parent
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.MULTILINE)


@pytest.mark.parametrize(("file", "base"), [("schema.json", False), ("schema.base.json", True)])
def test_committed_schema_is_fresh(file, base):
    committed = (ROOT / file).read_text(encoding="utf-8")
    option = " --base" if base else ""
    assert committed == schema_text(base=base), f"{file} is stale: run `megaspec schema{option} -o {file}`"


def properties(node, path=""):
    """(dotted path, property schema) for every property, through `$defs`."""
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items() if node.get("type") == "object" else ():
            yield f"{path}.{name}", prop
        for key, value in node.items():
            yield from properties(value, f"{path}/{key}" if key == "$defs" else path)
    elif isinstance(node, list):
        for item in node:
            yield from properties(item, path)


def test_every_property_has_a_description_and_its_key_as_title():
    schema = json.loads(schema_text())
    props = list(properties(schema))
    assert len(props) > 90
    for where, prop in props:
        name = where.rpartition(".")[2]
        assert prop.get("description", "").endswith("."), where
        assert prop.get("title") == name, where
        # an editor shows one title per matching `anyOf` branch: only `Section | None` keeps one
        assert "anyOf" not in prop or [b.get("type") for b in prop["anyOf"]] == [None, "null"], where


def spec_files():
    files = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "examples").rglob("*.yaml"))
    return [f for f in files if MODELINE.search(f.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("path", spec_files(), ids=lambda p: p.name)
def test_every_spec_and_base_is_valid_against_its_modeline_schema(path):
    """What an editor does: the file alone (no `extends:` merged) against the schema it names."""
    schema_path = (path.parent / MODELINE.search(path.read_text(encoding="utf-8")).group(1)).resolve()
    assert schema_path.name == ("schema.base.json" if path.name.startswith("_") else "schema.json")
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text(encoding="utf-8")))
    errors = [e.message for e in validator.iter_errors(load_source(path).data)]
    assert not errors, errors


def test_a_base_file_lints_clean_on_its_own_and_is_not_compiled(tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    assert runner.invoke(cli, ["lint", "--no-config", str(ROOT / "specs" / "_base.yaml")]).exit_code == 0
    result = runner.invoke(cli, ["compile", "-o", str(tmp_path), str(ROOT / "specs" / "_base.yaml")])
    assert result.exit_code == 1 and "is a base file (its name starts with `_`)" in result.output
    assert not any(tmp_path.iterdir())
