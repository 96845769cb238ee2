"""Reporting stage, human formats: `human` (rustc/ruff snippets with carets) and `concise` (one line each).

Only these formats print a footer (ruff `is_human_readable`). Columns in spans count characters;
carets are placed by display width, so a tab or a wide character before the span keeps them aligned.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

from ...diagnostics import Diagnostic, Severity, Span
from ...safe_text import CONTROLS
from ...spec.source_map import editor_lines

_SEVERITY_STYLES = {Severity.ERROR: "1;31", Severity.WARNING: "1;33", Severity.INFO: "1;36"}
_GUTTER_STYLE, _BOLD = "1;34", "1"
_TAB = "    "


@dataclass(frozen=True)
class _Mark:
    """One underlined span: `^` for the primary span, `-` with a label for a related one."""

    span: Span
    char: str
    label: str
    style: str


class _Painter:
    def __init__(self, color: bool):
        self.color = color

    def __call__(self, text: str, style: str) -> str:
        return f"\x1b[{style}m{text}\x1b[0m" if self.color and text else text


def render_concise(diagnostics: list[Diagnostic], *, color: bool = False) -> str:
    paint = _Painter(color)
    return "".join(_concise_line(printable(d), paint) + "\n" for d in diagnostics)


_ESCAPED = {c: chr(c).encode("unicode_escape").decode("ascii")  # `\n` stays: each format has its own way
            for c in (0x09, *CONTROLS)}


def printable(d: Diagnostic) -> Diagnostic:
    """Messages quote spec values: a control character (an escape sequence, a lone `\r`) is written
    as its escape, so a spec cannot move the cursor or forge lines in a terminal or a CI log."""
    related = tuple(replace(r, message=r.message.translate(_ESCAPED)) for r in d.related)
    return replace(d, message=d.message.translate(_ESCAPED), related=related,
                   hint=d.hint.translate(_ESCAPED) if d.hint else d.hint)


def _concise_line(d: Diagnostic, paint: _Painter) -> str:
    where = f"{d.span}: " if d.span else ""
    message = " ".join(d.message.splitlines())  # one diagnostic per line, whatever the message
    label = paint(f"{d.severity}[{d.code}]", _SEVERITY_STYLES[d.severity])
    # a did-you-mean is the fix a near miss needs (`megaspce`); the other hints stay for the full format
    suggestion = f" ({d.hint})" if d.hint and d.hint.startswith("Did you mean") else ""
    return f"{where}{label} {message}{suggestion} [{d.rule}]"


def render_full(diagnostics: list[Diagnostic], *, texts: dict[str, str], num_files: int,
                color: bool = False) -> str:
    paint = _Painter(color)
    blocks = [_render_diagnostic(printable(d), texts, paint) for d in diagnostics]
    return "\n".join([*blocks, format_summary(diagnostics, num_files)])


def format_summary(diagnostics: list[Diagnostic], num_files: int) -> str:
    num_errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    num_warnings = sum(d.severity is Severity.WARNING for d in diagnostics)
    files = _plural(num_files, "file")
    if num_errors == num_warnings == 0:
        return f"All checks passed ({files}).\n"
    found = f"Found {_plural(num_errors, 'error')} and {_plural(num_warnings, 'warning')} in {files}.\n"
    num_fixable = sum(d.fix is not None for d in diagnostics)
    return found + (f"{num_fixable} fixable with `megaspec lint --fix`.\n" if num_fixable else "")


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _render_diagnostic(d: Diagnostic, texts: dict[str, str], paint: _Painter) -> str:
    style = _SEVERITY_STYLES[d.severity]
    header = paint(f"{d.severity}[{d.code}]", style) + paint(f": {d.message}", _BOLD)
    marks = [] if d.span is None else [_Mark(d.span, "^", "", style)]
    marks += [_Mark(r.span, "-", r.message, _GUTTER_STYLE) for r in d.related]
    width = len(str(max((m.span.line for m in marks), default=1)))
    pad = " " * width
    rows = [header, *_render_snippets(marks, texts, width, paint)]
    if d.hint:
        rows.append(f"{pad} {paint('=', _GUTTER_STYLE)} help: {d.hint}")
    if d.fix is not None:
        rows.append(f"{pad} {paint('=', _GUTTER_STYLE)} fix: {d.fix.title} (`megaspec lint --fix`)")
    rows.append(f"{pad} {paint('=', _GUTTER_STYLE)} rule: {d.rule} (megaspec explain {d.code})")
    return "\n".join(rows) + "\n"


def _render_snippets(marks: list[_Mark], texts: dict[str, str], width: int, paint: _Painter) -> list[str]:
    """One section per file: the primary span's file first (`-->`), then others (`:::`)."""
    by_path: dict[str, list[_Mark]] = {}
    for m in marks:
        by_path.setdefault(m.span.path, []).append(m)
    pad, bar = " " * width, paint("|", _GUTTER_STYLE)
    rows: list[str] = []
    for i, (path, group) in enumerate(by_path.items()):
        if i:
            rows.append(f"{pad} {bar}")
        arrow = paint("-->" if i == 0 and group[0].char == "^" else ":::", _GUTTER_STYLE)
        rows += [f"{pad}{arrow} {group[0].span}", f"{pad} {bar}"]
        rows += _render_file_rows(group, texts.get(path), width, paint)
    return rows


def _render_file_rows(group: list[_Mark], text: str | None, width: int, paint: _Painter) -> list[str]:
    """The annotated source lines of one file, in line order, `...` between non-adjacent lines."""
    lines = editor_lines(text) if text is not None else []
    pad, bar = " " * width, paint("|", _GUTTER_STYLE)
    rows: list[str] = []
    prev = None
    for line_no in sorted({m.span.line for m in group}):
        if prev is not None and line_no > prev + 1:
            rows.append(paint("...", _GUTTER_STYLE))
        on_line = [m for m in group if m.span.line == line_no]
        source, on_line = _window(lines[line_no - 1] if line_no <= len(lines) else "", on_line)
        number = paint(f"{line_no:>{width}} |", _GUTTER_STYLE)
        rows.append(f"{number} {_expand(source)}".rstrip())
        for m in on_line:
            rows.append(f"{pad} {bar} {_underline(m, source, paint)}".rstrip())
        prev = line_no
    return rows


MAX_SNIPPET_CHARS = 160  # of one source line: a long line is shown around its first mark


def _window(source: str, marks: list[_Mark]) -> tuple[str, list[_Mark]]:
    """A line over MAX_SNIPPET_CHARS cut around its first mark (`...` where it was cut), and the marks
    moved onto the cut text; so a thousand diagnostics on one long line do not print it a thousand times."""
    if len(source) <= MAX_SNIPPET_CHARS:
        return source, marks
    start = max(0, min(m.span.col for m in marks) - 1 - MAX_SNIPPET_CHARS // 4)
    end = start + MAX_SNIPPET_CHARS
    head, tail = ("..." if start else ""), ("..." if end < len(source) else "")
    shift = len(head) - start

    def moved(m: _Mark) -> _Mark:
        end_col = m.span.end_col + shift if m.span.end_line == m.span.line else len(head) + MAX_SNIPPET_CHARS + 1
        col = max(1, m.span.col + shift)
        return replace(m, span=replace(m.span, col=col, end_col=max(col + 1, min(end_col, len(head) + MAX_SNIPPET_CHARS + 1)),
                                       end_line=m.span.line))
    return head + source[start:end] + tail, [moved(m) for m in marks]


def _underline(m: _Mark, source: str, paint: _Painter) -> str:
    """Markers under the span; a multi-line span is underlined to the end of its first line."""
    start = m.span.col - 1
    end = m.span.end_col - 1 if m.span.end_line == m.span.line else len(source)
    num_cols = max(1, _display_width(source[start:end]))
    indent = " " * _display_width(source[:start]) + " " * max(0, start - len(source))
    label = f" {m.label}" if m.label else ""
    return indent + paint(m.char * num_cols + label, m.style)


# Characters that would move the cursor, end the line or reverse the text on a terminal (a lone `\r`,
# U+2028, an escape sequence, U+202E): shown as one replacement character each, so the carets stay in their columns.
_UNPRINTABLE = {c: "\ufffd" for c in (0x0a, *CONTROLS)}


def _expand(text: str) -> str:
    return text.replace("\t", _TAB).translate(_UNPRINTABLE)


def _display_width(text: str) -> int:
    """Terminal columns: wide (East Asian) characters take two, a tab four."""
    expanded = _expand(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in expanded)
