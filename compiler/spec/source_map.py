"""Where each value of a spec was written: YAML path -> 1-based key and value spans, and the lines
editors number (split at `\n` only), shared by the reader, the validator, suppressions and reports.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ..diagnostics import Span, YamlPath


def editor_lines(text: str) -> list[str]:
    """The lines an editor, GitHub and SARIF number: split at `\n` only (a `\r` before it dropped).

    `str.splitlines()` also breaks at `\r`, `\x0b`, `\x0c`, `\x1c`-`\x1e`, U+0085, U+2028 and
    U+2029, so line N of it is not line N of the file once any of them appears.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class LineIndex:
    """Character offset -> 0-based (line, column) counting `\n` only.

    ruamel.yaml also counts `\r`, U+0085, U+2028 and U+2029 as line breaks in its marks, so its
    line numbers are not the file's; its character `index` is exact, and this maps it.
    """

    def __init__(self, text: str):
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]

    def point(self, offset: int) -> tuple[int, int]:
        line0 = bisect.bisect_right(self.starts, offset) - 1
        return line0, offset - self.starts[line0]


@dataclass(frozen=True, slots=True)
class NodeSpan:
    key: Span | None  # None for list items and the document root
    value: Span


@dataclass
class SourceMap:
    """YAML path -> spans, across every file that contributed to a spec (extends: bases too)."""

    entries: dict[YamlPath, NodeSpan] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # file path -> source text, for snippets

    def node(self, path: YamlPath) -> NodeSpan | None:
        return self.entries.get(tuple(path))

    def nearest(self, path: YamlPath) -> tuple[YamlPath, NodeSpan] | None:
        """The entry for `path`, or for its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            hit = self.entries.get(p)
            if hit is not None:
                return p, hit
            if not p:
                return None
            p = p[:-1]

    def text_at(self, span: Span) -> str | None:
        """The source text a one-line span covers, or None (multi-line, or a file it does not hold)."""
        lines = editor_lines(self.texts.get(span.path, ""))
        if span.line != span.end_line or not 1 <= span.line <= len(lines):
            return None
        return lines[span.line - 1][span.col - 1:span.end_col - 1]

    def value_span(self, path: YamlPath) -> Span | None:
        found = self.nearest(path)
        return found[1].value if found else None

    def key_span(self, path: YamlPath) -> Span | None:
        """The key's span, falling back to the value span (list items have no key)."""
        found = self.nearest(path)
        if not found:
            return None
        return found[1].key or found[1].value
