"""The committed `schema.json` is exactly what `megaspec schema` generates from the Spec model."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from megaspec.compiler.commands.lint import schema_text
from megaspec.compiler.spec.source import load_source

ROOT = Path(__file__).resolve().parent.parent


def test_schema_json_is_fresh():
    committed = (ROOT / "schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), "schema.json is stale: run `megaspec schema -o schema.json` and commit the result"


def test_schema_accepts_every_real_spec():
    schema = json.loads(schema_text())
    validator = jsonschema.Draft202012Validator(schema)
    specs = sorted((ROOT / "specs").glob("[!_]*.yaml"))
    assert specs
    for path in specs:
        data = load_source(path).data
        # `extends:` bases are merged by megaspec, not by JSON Schema: check the file's own keys only.
        errors = [e for e in validator.iter_errors(data) if e.validator != "required"]
        assert not errors, (path.name, [e.message for e in errors])
