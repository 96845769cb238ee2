"""The JSON Schema of the spec format, generated from the pydantic model: `megaspec schema`.

Editors (yaml-language-server) show it on hover and check-jsonschema validates with it, so it says
what the linter's model stage says. pydantic's output is reshaped for people in two ways:
- every property's title is its YAML key, and the sections' class names (`Resources`) are dropped:
  a hover reads `gpu`, then the description;
- a union of plain types (`str | list[str] | None`) becomes one schema with a list of types
  instead of an `anyOf`, so an editor matches one schema per key (an `anyOf` makes it show one
  title per matching branch: `Gpu || Gpu || Gpu`). Keywords that apply to one JSON type only
  (`pattern` to strings, `minimum` to numbers, `items` to arrays) mean the same after the merge.

A spec file has a `name`; a base file (`_*.yaml`, see `compose.is_base_file`) does not need one, so bases
get their own schema (`megaspec schema --base`), the same properties with only `megaspec` required.
"""

from __future__ import annotations

import json
from typing import Any

SCHEMA_ID = "https://megaspec.dev/schema/spec-v1.json"
BASE_SCHEMA_ID = "https://megaspec.dev/schema/base-v1.json"
JSON_SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Keywords that constrain one JSON type only: merging branches that use them keeps their meaning.
_TYPE_KEYWORDS = {
    "string": {"pattern", "minLength", "maxLength", "format", "patternErrorMessage"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "array": {"items", "minItems", "maxItems", "prefixItems", "uniqueItems"},
    "object": {"properties", "additionalProperties", "required", "minProperties", "maxProperties"},
    "boolean": set(),
    "null": set(),
}


def spec_schema(*, base: bool = False) -> dict[str, Any]:
    """The schema of a spec file (or of a base file) as a dict."""
    from .model import BaseSpec, Spec

    model = BaseSpec if base else Spec
    raw = model.model_json_schema(by_alias=True)
    definitions = raw.get("$defs", {})
    for definition in definitions.values():
        definition.pop("title", None)
    schema = _reshape(raw)
    for section in [schema, *schema.get("$defs", {}).values()]:
        for prop in section.get("properties", {}).values():  # the hover sits on the key, not behind `$ref`
            ref = prop.get("$ref", "").rpartition("/")[2]
            if ref in definitions and "description" not in prop:
                prop["description"] = definitions[ref]["description"]
    if not base:  # compose's rule: a spec names a preset, gives every model dimension or its own model
        from megaspec.runtime.contract.presets import PRESETS

        dims = sorted(next(iter(PRESETS.values())).as_dict())
        schema["anyOf"] = [{"required": ["preset"], "properties": {"preset": {"type": "string"}}},
                           {"required": ["model"], "properties": {"model": {"required": dims}}},
                           {"required": ["model"], "properties": {"model": {"required": ["entry", "vocab_size"]}}}]
    title = "megaspec base spec v1" if base else "megaspec spec v1"
    return {"$schema": JSON_SCHEMA_DRAFT, "$id": BASE_SCHEMA_ID if base else SCHEMA_ID, **schema, "title": title}


def schema_text(*, base: bool = False) -> str:
    """Deterministic text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(spec_schema(base=base), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _reshape(node: Any) -> Any:
    if isinstance(node, list):
        return [_reshape(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _reshape(value) for key, value in node.items()}
    if isinstance(node.get("anyOf"), list):
        merged = _merge_plain(node["anyOf"])
        if merged is not None:
            node = {**{k: v for k, v in node.items() if k != "anyOf"}, **merged}
    if isinstance(node.get("properties"), dict) and node.get("type") == "object":
        node["properties"] = {name: {**prop, "title": name} for name, prop in node["properties"].items()}
    return node


def _merge_plain(branches: list[Any]) -> dict[str, Any] | None:
    """`anyOf` of plain typed schemas -> one schema with a list of types; None when not equivalent."""
    types: list[str] = []
    merged: dict[str, Any] = {}
    enum: list[Any] | None = None
    for branch in branches:
        kind = branch.get("type") if isinstance(branch, dict) else None
        if kind not in _TYPE_KEYWORDS or kind in types:
            return None
        rest = {k: v for k, v in branch.items() if k != "type"}
        if "enum" in rest:  # a Literal: its values, plus null when the other branch is `None`
            if enum is not None:
                return None
            enum = rest.pop("enum")
        if set(rest) - _TYPE_KEYWORDS[kind] or set(rest) & set(merged):
            return None
        types.append(kind)
        merged.update(rest)
    if enum is not None:
        if any(t not in ("null", _type_of(enum)) for t in types):
            return None
        merged["enum"] = enum + ([None] if "null" in types else [])
    return {"type": types[0] if len(types) == 1 else types, **merged}


def _type_of(values: list[Any]) -> str | None:
    kinds = {"string" if isinstance(v, str) else "integer" if isinstance(v, int) and not isinstance(v, bool)
             else "other" for v in values}
    return kinds.pop() if len(kinds) == 1 else None
