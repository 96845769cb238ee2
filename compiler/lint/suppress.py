"""Stage 4 of the lint pipeline: suppression comments, bound to YAML nodes, applied to diagnostics.

`# megaspec: ignore[MS201,MS303] reason` on its own line binds to the NEXT key and its subtree; at
the end of a line it binds to the key on that line. `# megaspec: file-ignore[MS3] reason` covers
the whole file (code prefixes allowed). Comments are scanned lexically and bound through each
file's own SourceMap key spans (ruamel attaches own-line comments to the previous key, so its
comment API cannot be used). Unused, unknown and malformed suppressions are diagnostics themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..codes import MALFORMED_SUPPRESSION, UNKNOWN_CODE_IN_SUPPRESSION, UNUSED_SUPPRESSION, Code
from ..diagnostics import Diagnostic, Fix, Severity, Span, YamlPath
from ..spec.source_map import SourceMap, editor_lines

_COMMENT = re.compile(r"(?:^|\s)#\s*megaspec\s*:\s*(?P<kind>[A-Za-z-]*)\s*(?:\[(?P<codes>[^\]]*)\])?")
_CODE = re.compile(r"^MS\d{1,3}$")


@dataclass
class Suppression:
    path: str  # file the comment is in
    span: Span  # the comment
    codes: tuple[str, ...]  # full codes or prefixes ("MS3")
    target: YamlPath | None  # bound node; None for file-ignore
    file_wide: bool = False
    num_used: int = 0
    line_text: str = ""  # the whole line the comment is on, for the fix that removes it

    def removal(self) -> Fix:
        """Delete the comment; delete its line when nothing else is on it."""
        s, text = self.span, self.line_text
        code = text[:s.col - 1].rstrip()
        if not code:
            whole = Span(path=s.path, line=s.line, col=1, end_line=s.line + 1, end_col=1)
            return Fix(title="Remove the comment", span=whole, original=text + "\n", replacement="")
        tail = Span(path=s.path, line=s.line, col=len(code) + 1, end_line=s.line, end_col=s.end_col)
        return Fix(title="Remove the comment", span=tail, original=text[len(code):s.end_col - 1], replacement="")

    def matches(self, d: Diagnostic) -> bool:
        if d.span is None or d.span.path != self.path or not any(d.code.startswith(c) for c in self.codes):
            return False
        return self.file_wide or (self.target is not None and tuple(d.yaml_path[:len(self.target)]) == self.target)


@dataclass
class Suppressions:
    items: list[Suppression] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # MS091 / MS092 found while scanning


def _diag(code: Code, message: str, span: Span, hint: str, severity: Severity) -> Diagnostic:
    return Diagnostic(code=code.code, rule=code.name, severity=severity, message=message, span=span, hint=hint)


def _key_lines(smap: SourceMap) -> dict[int, YamlPath]:
    """Line -> the outermost node that starts there (a key, or a list item without a key)."""
    lines: dict[int, YamlPath] = {}
    for path, node in smap.entries.items():
        if not path:
            continue
        line = (node.key or node.value).line
        if line not in lines or len(path) < len(lines[line]):
            lines[line] = path
    return lines


def _next_key(lines: dict[int, YamlPath], after: int) -> YamlPath | None:
    later = [line for line in lines if line > after]
    return lines[min(later)] if later else None


def _normalize(code: str) -> str:
    """`MS3xx` and `MS30x` are written prefixes: keep only the digits."""
    return code.strip().upper().rstrip("X")


def _check_codes(codes: list[str], known: set[str], span: Span) -> list[Diagnostic]:
    out = []
    for code in codes:
        if not _CODE.match(code):
            out.append(_diag(MALFORMED_SUPPRESSION, f"`{code}` is not a megaspec code", span,
                             "Write codes like `MS203` or a prefix like `MS3`", Severity.ERROR))
        elif not any(k.startswith(code) for k in known):
            out.append(_diag(UNKNOWN_CODE_IN_SUPPRESSION, f"`{code}` is not a megaspec code", span,
                             "Check the code with `megaspec rules`", Severity.ERROR))
    return out


def scan(path: str, text: str, smap: SourceMap, known: set[str]) -> Suppressions:
    """Find every `# megaspec:` comment in one file and bind it to a node."""
    out = Suppressions()
    lines = _key_lines(smap)
    for i, line in enumerate(editor_lines(text), start=1):
        m = _COMMENT.search(line)
        if not m:
            continue
        col = line.index("#", m.start()) + 1
        span = Span(path=path, line=i, col=col, end_line=i, end_col=len(line.rstrip()) + 1)
        kind, raw = m.group("kind"), m.group("codes")
        codes = [_normalize(c) for c in (raw or "").split(",") if c.strip()]
        if kind not in ("ignore", "file-ignore") or not codes:
            out.diagnostics.append(_diag(
                MALFORMED_SUPPRESSION, "this `# megaspec:` comment names no codes" if kind in (
                    "ignore", "file-ignore") else f"`megaspec: {kind}` is not a suppression", span,
                "Write `# megaspec: ignore[MS203] reason` or `# megaspec: file-ignore[MS3] reason`",
                Severity.ERROR))
            continue
        problems = _check_codes(codes, known, span)
        out.diagnostics.extend(problems)
        if problems:
            continue
        own_line = not line[:col - 1].strip()
        target = None if kind == "file-ignore" else (_next_key(lines, i) if own_line else lines.get(i))
        out.items.append(Suppression(path, span, tuple(codes), target, file_wide=kind == "file-ignore",
                                     line_text=line))
    return out


def apply_suppressions(diagnostics: list[Diagnostic], file_maps: dict[str, SourceMap], known: set[str], *,
                       report_unused: bool = True) -> list[Diagnostic]:
    """Drop suppressed diagnostics; add MS090-MS092 for the suppression comments themselves."""
    scanned = [scan(p, smap.texts.get(p, ""), smap, known) for p, smap in file_maps.items()]
    items = [s for found in scanned for s in found.items]
    kept = []
    for d in diagnostics:
        hits = [s for s in items if s.matches(d)]
        for s in hits:
            s.num_used += 1
        if not hits:
            kept.append(d)
    kept.extend(d for found in scanned for d in found.diagnostics)
    if report_unused:
        kept.extend(_unused(s) for s in items if not s.num_used)
    return kept


def _unused(s: Suppression) -> Diagnostic:
    codes = ", ".join(s.codes)
    where = "in this file" if s.file_wide else "on the node it is bound to"
    d = _diag(UNUSED_SUPPRESSION, f"suppression of `{codes}` matches no diagnostic {where}",
              s.span, "Remove the comment, or fix its codes", Severity.WARNING)
    return replace(d, fix=s.removal())
