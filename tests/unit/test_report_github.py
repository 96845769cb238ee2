"""GitHub workflow commands: escaping exactly like `@actions/core`, and location properties."""

from __future__ import annotations

import pytest

from megaspec.compiler.diagnostics import Diagnostic, Severity, Span
from megaspec.compiler.lint.report.github import escape_data, escape_property, format_command


@pytest.mark.parametrize(("raw", "data", "prop"), [
    ("plain text", "plain text", "plain text"),
    ("100%", "100%25", "100%25"),
    ("%0A is not a newline", "%250A is not a newline", "%250A is not a newline"),
    ("a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"),
    ("key: a, b", "key: a, b", "key%3A a%2C b"),
    ("C:\\specs\\x,y.yaml", "C:\\specs\\x,y.yaml", "C%3A\\specs\\x%2Cy.yaml"),
    ("::error::injected", "::error::injected", "%3A%3Aerror%3A%3Ainjected"),
    ("`gpu`: \"H100:8\" ü", "`gpu`: \"H100:8\" ü", "`gpu`%3A \"H100%3A8\" ü"),
])
def test_escaping_matches_actions_core(raw: str, data: str, prop: str) -> None:
    assert escape_data(raw) == data
    assert escape_property(raw) == prop


def _diag(span: Span | None, severity: Severity = Severity.ERROR, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code="MS203", rule="fsdp-degree-not-divisor", severity=severity,
                      message="FSDP degree `3`: bad, 50%", span=span, hint=hint)


def test_single_line_span_has_columns_and_escaped_properties() -> None:
    span = Span(path="specs/a,b:c.yaml", line=14, col=11, end_line=14, end_col=12)
    assert format_command(_diag(span, hint="Use 4\nor 8")) == (
        "::error title=megaspec MS203 (fsdp-degree-not-divisor),file=specs/a%2Cb%3Ac.yaml,"
        "line=14,col=11,endLine=14,endColumn=12::FSDP degree `3`: bad, 50%25%0Ahelp: Use 4%0Aor 8")


def test_multi_line_span_omits_columns() -> None:
    span = Span(path="s.yaml", line=3, col=5, end_line=6, end_col=2)
    assert format_command(_diag(span, Severity.WARNING)) == (
        "::warning title=megaspec MS203 (fsdp-degree-not-divisor),file=s.yaml,line=3,endLine=6"
        "::FSDP degree `3`: bad, 50%25")


def test_info_is_a_notice_and_no_span_means_no_location() -> None:
    assert format_command(_diag(None, Severity.INFO)) == (
        "::notice title=megaspec MS203 (fsdp-degree-not-divisor)::FSDP degree `3`: bad, 50%25")
