"""`megaspec lint --fix`: apply the safe, mechanical repairs that diagnostics carry (`Diagnostic.fix`).

A fix replaces the text of one span. Fixes are made while linting, on the text as written, and
applied to the file as it is on disk now: a span whose text has changed since is left alone, and
fixes that overlap keep the first. Each file is rewritten at most once, atomically, with its
byte-order mark and line endings kept. `spec/scalar_text.py` builds the replacement texts.
"""

from __future__ import annotations

from pathlib import Path

from megaspec.runtime.contract.files import write_text_atomic

from ..diagnostics import Diagnostic, Fix


def _offset(lines: list[str], line: int, col: int) -> int:
    return sum(len(text) for text in lines[:line - 1]) + col - 1


def _apply(text: str, fixes: list[Fix]) -> tuple[str, int]:
    """`text` with every applicable fix in place, and how many were applied."""
    lines = text.split("\n")
    lines = [line + "\n" for line in lines[:-1]] + lines[-1:]  # editor lines: `\n` only, ends kept
    spans = []
    for fix in fixes:
        s = fix.span
        start, end = _offset(lines, s.line, s.col), _offset(lines, s.end_line, s.end_col)
        # Line breaks are not content: a fix that deletes a line holds it with `\n`, the file may have `\r\n`.
        unchanged = text[start:end].rstrip("\r\n") == fix.original.rstrip("\r\n")
        if unchanged and not any(start < e and b < end for b, e, _ in spans):
            spans.append((start, end, fix.replacement))
    for start, end, replacement in sorted(spans, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text, len(spans)


def apply_fixes(diagnostics: list[Diagnostic]) -> dict[str, int]:
    """Apply every fix the diagnostics carry to the files on disk; returns fixes applied per file."""
    by_file: dict[str, list[Fix]] = {}
    for d in diagnostics:
        if d.fix is not None:
            by_file.setdefault(d.fix.span.path, []).append(d.fix)
    applied = {}
    for path, fixes in by_file.items():
        raw = Path(path).read_bytes()
        bom = "\ufeff" if raw.startswith(b"\xef\xbb\xbf") else ""
        text, count = _apply(raw.decode("utf-8-sig"), fixes)
        if count:
            write_text_atomic(path, bom + text)
            applied[path] = count
    return applied
