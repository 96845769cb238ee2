"""The source texts a lint report quotes, with every credential masked by where it is written, not only
by its value: a token written with a `\\x4e` escape, folded across lines or as a private key with
`\\n` escapes is masked over its whole YAML node; a token in a comment, or in a file that did not
parse, over the run the entropy test finds. The messages are masked by value (`redact_text`,
which also masks any piece of a credential a message cut or a template derived), and whatever
megaspec prints passes `credentials.mask_known` last (compiler/cli.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..diagnostics import Span
from ..spec.compose import Composed
from ..spec.source_map import SourceMap, editor_lines
from .credentials import entropy_runs, find_credentials, redact_text

_COMMENT = re.compile(r"(?:^|\s)(#.*)$", re.MULTILINE)  # a `#` inside a quoted scalar is caught too: masked all the same


def masked_texts(composed: Composed, secrets: set[str]) -> dict[str, str]:
    """Each file's text with every credential masked (by value, by node span, in comments)."""
    out = {}
    for path, text in composed.smap.texts.items():
        text = redact_text(text, secrets)
        data, smap = composed.file_data.get(path), composed.file_maps.get(path)
        if data is not None and smap is not None:
            text = mask_spans(text, _credential_spans(data, smap))
            runs = [(m.start(1) + a, m.start(1) + b) for m in _COMMENT.finditer(text) for a, b in entropy_runs(m[1])]
        else:  # the file did not parse: any generated-looking run anywhere in it
            runs = list(entropy_runs(text))
        out[path] = _mask_offsets(text, runs)
    return out


def _credential_spans(data: object, smap: SourceMap) -> list[Span]:
    spans = []
    for yaml_path, value, _ in find_credentials(data):
        is_key = bool(yaml_path) and yaml_path[-1] == value
        span = smap.key_span(yaml_path) if is_key else smap.value_span(yaml_path)
        if span is not None:
            spans.append(span)
    return spans


def mask_spans(text: str, spans: Iterable[Span]) -> str:
    """`text` with every scalar the spans start masked to its end, continuation lines included
    (blanks, newlines and quotes kept: the layout stays)."""
    starts = [0]
    for line in editor_lines(text):
        starts.append(starts[-1] + len(line) + 1)
    ranges = [_scalar(text, starts, s) for s in spans if 1 <= s.line <= s.end_line < len(starts)]
    return _mask_offsets(text, [(start + _kept(text[start:end]), end) for start, end in ranges])


def _kept(scalar: str) -> int:
    """How many leading characters stay readable: a quote and the first 4, as `credentials.mask` keeps."""
    quote = int(scalar[:1] in "\"'" and len(scalar) > 1)
    return quote + (4 if len(scalar) - 2 * quote > 12 and "\\" not in scalar[:quote + 4] else 0)


_QUOTED = {'"': re.compile(r'"(?:[^"\\]|\\.)*"'), "'": re.compile(r"'(?:[^']|'')*'")}


def _scalar(text: str, starts: list[int], span: Span) -> tuple[int, int]:
    """The offsets of the whole scalar a (first-line) span starts: to its closing quote, or through the
    lines indented deeper than its own (a folded plain or block scalar)."""
    start, end = starts[span.line - 1] + span.col - 1, starts[span.end_line - 1] + span.end_col - 1
    quoted = _QUOTED.get(text[start:start + 1])
    if quoted and (m := quoted.match(text, start)):
        return start, m.end()
    line_text = text[starts[span.line - 1]:starts[span.line] - 1]
    indent = len(line_text) - len(line_text.lstrip(" "))
    line = span.end_line
    while line < len(starts) - 1:
        following = text[starts[line]:starts[line + 1] - 1]
        if following.strip() and len(following) - len(following.lstrip(" ")) <= indent:
            break
        end, line = starts[line + 1] - 1, line + 1
    return start, end


def _mask_offsets(text: str, ranges: Iterable[tuple[int, int]]) -> str:
    chars = None
    for start, end in ranges:
        chars = chars or list(text)
        for i in range(max(0, start), min(end, len(text))):
            if chars[i] not in " \t\n\"'":
                chars[i] = "*"
    return text if chars is None else "".join(chars)
