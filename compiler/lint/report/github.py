"""Reporting stage, `github` format: GitHub Actions workflow commands that annotate the PR diff.

The escaping is exactly `@actions/core`'s `escapeData` / `escapeProperty`; the layout follows ruff
`render/github.rs`. Related spans have no place in a workflow command and are left out.
"""

from __future__ import annotations

from ...diagnostics import Diagnostic, Severity, Span
from .human import printable

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message (`@actions/core` `escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (`@actions/core` `escapeProperty`): `:` and `,` delimit properties."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: list[Diagnostic]) -> str:
    return "".join(format_command(d) + "\n" for d in diagnostics)


def format_command(d: Diagnostic) -> str:
    """One `::error title=...,file=...::message` line."""
    d = printable(d)
    props: list[tuple[str, object]] = [("title", f"megaspec {d.code} ({d.rule})")]
    if d.span is not None:
        props += _location(d.span)
    body = d.message if d.hint is None else f"{d.message}\nhelp: {d.hint}"
    props_text = ",".join(f"{key}={escape_property(str(value))}" for key, value in props)
    return f"::{_COMMANDS[d.severity]} {props_text}::{escape_data(body)}"


def _location(span: Span) -> list[tuple[str, object]]:
    # GitHub rejects col/endColumn on a multi-line annotation (ruff#22074).
    one_line = span.line == span.end_line
    props: list[tuple[str, object]] = [("file", span.path), ("line", span.line)]
    if one_line:
        props.append(("col", span.col))
    props.append(("endLine", span.end_line))
    if one_line:
        props.append(("endColumn", span.end_col))
    return props
