"""Reporting stage, `sarif` format: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

Every registered rule is listed in `tool.driver.rules`, ordered by code (as actionlint lists all
its kinds), so a viewer can show a rule's documentation even for rules that found nothing.
Layout follows ruff `crates/ruff_linter/src/message/sarif.rs`.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from ... import __version__
from ...diagnostics import Diagnostic, Severity, Span
from ..rules.registry import REGISTRY, Rule
from .links import HOMEPAGE_URL, rule_url

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def registered_rules() -> list[Rule]:
    """Every rule, lint and stage, ordered by code; importing the rule modules registers them."""
    from .. import receipt_rules, rules, stage_rules  # noqa: F401 - imported for their registrations

    return sorted(REGISTRY.values(), key=lambda r: r.code)


def render_sarif(diagnostics: list[Diagnostic]) -> str:
    rules = registered_rules()
    index = {r.code: i for i, r in enumerate(rules)}
    run = {
        "tool": {"driver": {
            "name": "megaspec",
            "version": __version__,
            "informationUri": HOMEPAGE_URL,
            "rules": [_rule(r) for r in rules],
        }},
        # Our columns count characters, not SARIF's default UTF-16 code units.
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index) for d in diagnostics],
    }
    doc = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _rule(r: Rule) -> dict:
    return {
        "id": r.code,
        "name": r.name,
        "shortDescription": {"text": r.summary},
        "fullDescription": {"text": r.doc or r.summary},
        "helpUri": rule_url(r.code),
        "defaultConfiguration": {"level": _LEVELS[r.severity]},
    }


def _result(d: Diagnostic, index: dict[str, int]) -> dict:
    text = d.message if d.hint is None else f"{d.message}\n{d.hint}"
    result: dict = {"ruleId": d.code}
    if d.code in index:  # an unregistered code (a bug elsewhere) still reports, without an index
        result["ruleIndex"] = index[d.code]
    result |= {"level": _LEVELS[d.severity], "message": {"text": text}}
    if d.span is not None:
        result["locations"] = [{"physicalLocation": _physical(d.span)}]
    if d.related:
        result["relatedLocations"] = [
            {"id": i, "message": {"text": r.message}, "physicalLocation": _physical(r.span)}
            for i, r in enumerate(d.related)]
    properties = {"rule": d.rule, "yamlPath": list(d.yaml_path)}
    if d.origin is not None:
        properties["origin"] = d.origin
    result["properties"] = properties
    return result


def _physical(span: Span) -> dict:
    return {
        "artifactLocation": {"uri": quote(span.path), "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": span.line, "startColumn": span.col,
                   "endLine": span.end_line, "endColumn": span.end_col},
    }
