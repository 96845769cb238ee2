"""Reporting stage, `json` format: a versioned object for tools (`megaspec.diagnostics.v1`).

An object rather than a bare list, so the layout can carry its `schema_version`. Keys are sorted
and every field is always present (null when unknown), so consumers need no existence checks.
"""

from __future__ import annotations

import json

from ... import __version__
from ...diagnostics import Diagnostic, Span
from .links import rule_url

SCHEMA_VERSION = "megaspec.diagnostics.v1"


def render_json(diagnostics: list[Diagnostic]) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "megaspec_version": __version__,
        "diagnostics": [_entry(d) for d in diagnostics],
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _entry(d: Diagnostic) -> dict:
    return {
        "code": d.code,
        "rule": d.rule,
        "severity": d.severity.value,
        "message": d.message,
        "hint": d.hint,
        **_span_fields(d.span),
        "yaml_path": list(d.yaml_path),
        "related": [{**_span_fields(r.span), "message": r.message} for r in d.related],
        "origin": d.origin,
        "url": rule_url(d.code),
        "fix": None if d.fix is None else {"title": d.fix.title, **_span_fields(d.fix.span),
                                           "replacement": d.fix.replacement},
    }


def _span_fields(span: Span | None) -> dict:
    if span is None:
        return dict.fromkeys(("path", "line", "col", "end_line", "end_col"))
    return {"path": span.path, "line": span.line, "col": span.col,
            "end_line": span.end_line, "end_col": span.end_col}
