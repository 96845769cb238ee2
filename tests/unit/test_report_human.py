"""Human formats: caret placement by character column, the footer's wording, and color."""

from __future__ import annotations

import pytest

from megaspec.compiler.diagnostics import Diagnostic, Related, Severity, Span
from megaspec.compiler.lint.report import render_report


def _diag(line: int, col: int, end_line: int, end_col: int, *, path: str = "s.yaml",
          severity: Severity = Severity.ERROR, related: tuple[Related, ...] = ()) -> Diagnostic:
    return Diagnostic(code="MS104", rule="out-of-range", severity=severity, message="bad value",
                      span=Span(path=path, line=line, col=col, end_line=end_line, end_col=end_col),
                      related=related)


def _snippet(d: Diagnostic, text: str) -> list[str]:
    out = render_report("human", [d], texts={"s.yaml": text}, num_files=1)
    return out.splitlines()[1:5]


def test_carets_count_characters_not_bytes() -> None:
    # `é` is two UTF-8 bytes but one column: the caret must sit under `3`, not one to the right.
    d = _diag(1, 15, 1, 16)
    assert _snippet(d, "name: \"café\", n: 3\n") == [
        " --> s.yaml:1:15", "  |", '1 | name: "café", n: 3', "  |               ^"]


def test_wide_characters_and_tabs_take_their_display_width() -> None:
    # `模型` is two characters but four terminal columns; a tab is shown as four spaces.
    d = _diag(1, 12, 1, 14)
    assert _snippet(d, "a: \"模型\"\tx: 12\n")[2:] == ['1 | a: "模型"    x: 12', "  | " + " " * 16 + "^^"]


def test_multi_line_span_is_underlined_to_the_end_of_its_first_line() -> None:
    d = _diag(2, 7, 3, 5)
    assert _snippet(d, "a: 1\nlist: [1,\n  2]\n")[2:] == ["2 | list: [1,", "  |       ^^^"]


def test_span_past_the_end_of_the_line_still_gets_one_caret() -> None:
    d = _diag(1, 9, 1, 9)
    assert _snippet(d, "train:\n")[2:] == ["1 | train:", "  |         ^"]


def test_related_span_in_the_same_file_shares_the_snippet() -> None:
    related = (Related(span=Span(path="s.yaml", line=1, col=6, end_line=1, end_col=9), message="set here"),)
    out = render_report("human", [_diag(2, 7, 2, 8, related=related)],
                        texts={"s.yaml": "gpus: 'x'\nfsdp: 3\n"}, num_files=1)
    assert out.splitlines()[1:7] == [
        " --> s.yaml:2:7", "  |", "1 | gpus: 'x'", "  |      --- set here", "2 | fsdp: 3", "  |       ^"]


@pytest.mark.parametrize(("severities", "num_files", "footer"), [
    ([], 1, "All checks passed (1 file)."),
    ([], 3, "All checks passed (3 files)."),
    ([Severity.INFO], 2, "All checks passed (2 files)."),
    ([Severity.ERROR], 1, "Found 1 error and 0 warnings in 1 file."),
    ([Severity.ERROR, Severity.ERROR, Severity.WARNING], 2, "Found 2 errors and 1 warning in 2 files."),
    ([Severity.WARNING, Severity.WARNING], 1, "Found 0 errors and 2 warnings in 1 file."),
])
def test_footer_counts_with_singular_and_plural(severities: list[Severity], num_files: int,
                                                footer: str) -> None:
    diags = [_diag(1, 1, 1, 2, severity=s) for s in severities]
    out = render_report("human", diags, texts={"s.yaml": "a: 1\n"}, num_files=num_files)
    assert out.endswith(footer + "\n")


def test_color_only_when_asked() -> None:
    d = _diag(1, 1, 1, 2)
    plain = render_report("human", [d], texts={"s.yaml": "a: 1\n"}, num_files=1)
    colored = render_report("human", [d], texts={"s.yaml": "a: 1\n"}, num_files=1, color=True)
    assert "\x1b[" not in plain
    assert colored.startswith("\x1b[1;31merror[MS104]\x1b[0m")
    warning = render_report("concise", [_diag(1, 1, 1, 2, severity=Severity.WARNING)], texts={},
                            num_files=1, color=True)
    assert warning == "s.yaml:1:1: \x1b[1;33mwarning[MS104]\x1b[0m bad value [out-of-range]\n"


def test_missing_source_text_keeps_the_location() -> None:
    out = render_report("human", [_diag(4, 2, 4, 3)], texts={}, num_files=1)
    assert out.splitlines()[:5] == ["error[MS104]: bad value", " --> s.yaml:4:2", "  |", "4 |", "  |  ^"]


def test_concise_is_one_line_per_diagnostic_without_footer() -> None:
    d = Diagnostic(code="MS001", rule="yaml-syntax-error", severity=Severity.ERROR,
                   message="first\nsecond", span=None)
    assert render_report("concise", [d], texts={}, num_files=1) == "error[MS001] first second [yaml-syntax-error]\n"
    assert render_report("concise", [], texts={}, num_files=1) == ""
