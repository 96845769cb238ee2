"""Stage 1 of the compiler: read one YAML file into plain data plus a source map.

The source map records, for every YAML path, the 1-based span of the key and of the value, so
every later diagnostic can point at the line the user wrote. Input is bounded: file size, alias
expansion and nesting depth are capped, so a YAML bomb is a located error in milliseconds.
Problems come back as MS0xx diagnostics, never as exceptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Severity, Span, YamlPath

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a spec is a page, not a data set
MAX_NODES = 20_000  # plain-data nodes after alias expansion (a real spec has a few hundred)
MAX_DEPTH = 64


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

    def value_span(self, path: YamlPath) -> Span | None:
        found = self.nearest(path)
        return found[1].value if found else None

    def key_span(self, path: YamlPath) -> Span | None:
        """The key's span, falling back to the value span (list items have no key)."""
        found = self.nearest(path)
        if not found:
            return None
        return found[1].key or found[1].value


@dataclass
class Source:
    path: str
    data: Any  # plain dict/list/str/int/float/bool/None; None when loading failed
    smap: SourceMap
    diagnostics: list[Diagnostic]


def _diag(code: str, rule: str, message: str, span: Span | None, hint: str) -> Diagnostic:
    return Diagnostic(code=code, rule=rule, severity=Severity.ERROR, message=message, span=span, hint=hint)


def _point(path: str, line0: int, col0: int, lines: list[str]) -> Span:
    text = lines[line0] if 0 <= line0 < len(lines) else ""
    end = len(text.rstrip()) + 1 if len(text.rstrip()) > col0 else col0 + 2
    return Span(path=path, line=line0 + 1, col=col0 + 1, end_line=line0 + 1, end_col=end)


_PLAIN_END = re.compile(r"\s+#|,\s|[,\]\}]|:\s|:$|\s*$")


def _token_span(path: str, lines: list[str], line0: int, col0: int) -> Span:
    """Span of the scalar or key token starting at (line0, col0), both 0-based."""
    text = lines[line0] if 0 <= line0 < len(lines) else ""
    rest = text[col0:]
    if rest[:1] in ("'", '"'):
        q = rest[0]
        i = 1
        while i < len(rest):
            if rest[i] == "\\" and q == '"':
                i += 2
                continue
            if rest[i] == q:
                if q == "'" and rest[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                break
            i += 1
        length = min(i + 1, len(rest))
    elif rest[:1] in ("[", "{", "|", ">", "") or rest.startswith("- "):
        length = len(rest.rstrip()) or 1
    else:
        m = _PLAIN_END.search(rest)
        length = (m.start() if m else len(rest)) or 1
    return Span(path=path, line=line0 + 1, col=col0 + 1, end_line=line0 + 1, end_col=col0 + 1 + length)


class _Budget(Exception):
    def __init__(self, code: str, rule: str, message: str, hint: str, where: tuple[int, int] | None):
        super().__init__(message)
        self.args4 = (code, rule, message, hint)
        self.where = where


def _where(node: Any) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    return (lc.line, lc.col) if lc is not None and lc.line is not None else None


class _Walker:
    """Converts ruamel nodes to plain data while recording spans, under node and depth budgets."""

    def __init__(self, path: str, lines: list[str]):
        self.path, self.lines = path, lines
        self.entries: dict[YamlPath, NodeSpan] = {}
        self.num_nodes = 0

    def span(self, line0: int | None, col0: int | None) -> Span:
        return _token_span(self.path, self.lines, line0 or 0, col0 or 0)

    def walk(self, node: Any, ypath: YamlPath, depth: int) -> Any:
        self.num_nodes += 1
        if self.num_nodes > MAX_NODES:
            raise _Budget("MS005", "alias-expansion-too-large",
                          f"the document expands to more than {MAX_NODES:,} nodes",
                          "Remove the nested anchors and aliases (`&a` / `*a`): a spec does not need them",
                          _where(node))
        if depth > MAX_DEPTH:
            raise _Budget("MS006", "nesting-too-deep", f"the document nests deeper than {MAX_DEPTH} levels",
                          "Flatten the structure; a spec is at most a few levels deep", _where(node))
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k in node:
                key = k if isinstance(k, str) else str(k)
                child = (*ypath, key)
                kl, kc = node.lc.key(k)
                vl, vc = node.lc.value(k)
                self.entries[child] = NodeSpan(key=self.span(kl, kc), value=self.span(vl, vc))
                out[key] = self.walk(node[k], child, depth + 1)
            return out
        if isinstance(node, list):
            items = []
            for i, item in enumerate(node):
                child = (*ypath, i)
                il, ic = node.lc.item(i)
                self.entries[child] = NodeSpan(key=None, value=self.span(il, ic))
                items.append(self.walk(item, child, depth + 1))
            return items
        if type(node).__name__.startswith("Tagged"):
            raise _Budget("MS001", "yaml-syntax-error", "custom YAML tags are not allowed in a spec",
                          "Remove the `!tag`; specs are plain YAML", None if not ypath else self._at(ypath))
        return _plain_scalar(node)

    def _at(self, ypath: YamlPath) -> tuple[int, int] | None:
        hit = self.entries.get(ypath)
        return (hit.value.line - 1, hit.value.col - 1) if hit else None


def _plain_scalar(node: Any) -> Any:
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return str(node)  # timestamps and other YAML types: keep the text; the model will judge it


def _tab_indent(path: str, lines: list[str]) -> Diagnostic | None:
    for i, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped)
            span = Span(path=path, line=i + 1, col=col + 1, end_line=i + 1, end_col=col + 2)
            return _diag("MS003", "tab-indentation", "a tab is used for indentation", span,
                         "Indent with spaces; YAML does not allow tabs in indentation")
    return None


def _flow_depth(text: str) -> tuple[int, int]:
    """Deepest `[`/`{` nesting and the offset where it is reached (a cheap pre-check)."""
    depth = best = where = 0
    for i, ch in enumerate(text):
        if ch in "[{":
            depth += 1
            if depth > best:
                best, where = depth, i
        elif ch in "]}":
            depth = max(0, depth - 1)
    return best, where


def _offset_span(path: str, text: str, offset: int) -> Span:
    line0 = text.count("\n", 0, offset)
    col0 = offset - (text.rfind("\n", 0, offset) + 1)
    return Span(path=path, line=line0 + 1, col=col0 + 1, end_line=line0 + 1, end_col=col0 + 2)


def parse_text(text: str, path: str) -> Source:
    """Parse YAML text; `path` is the display path used in spans."""
    smap = SourceMap(texts={path: text})
    lines = text.splitlines()
    if tab := _tab_indent(path, lines):
        return Source(path, None, smap, [tab])
    depth, where = _flow_depth(text)
    if depth > MAX_DEPTH:
        d = _diag("MS006", "nesting-too-deep", f"the document nests deeper than {MAX_DEPTH} levels",
                  _offset_span(path, text, where), "Flatten the structure; a spec is at most a few levels deep")
        return Source(path, None, smap, [d])

    from ruamel.yaml import YAML  # deferred: keeps `import megaspec.compiler` cheap
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as e:
        return Source(path, None, smap, [_yaml_error(e, path, lines)])
    except YAMLError as e:
        return Source(path, None, smap, [_diag("MS001", "yaml-syntax-error", _first_line(str(e)),
                                               _point(path, 0, 0, lines), "Fix the YAML syntax")])
    except RecursionError:
        return Source(path, None, smap, [_diag("MS006", "nesting-too-deep", "the document nests too deeply",
                                               _point(path, 0, 0, lines), "Flatten the structure")])
    if not isinstance(doc, dict):
        kind = "empty" if doc is None else "not a mapping"
        d = _diag("MS007", "document-not-a-mapping", f"the spec is {kind}", _point(path, 0, 0, lines),
                  "Start the file with `megaspec: 1` and `name: ...` at the top level")
        return Source(path, None, smap, [d])
    walker = _Walker(path, lines)
    try:
        data = walker.walk(doc, (), 0)
    except _Budget as b:
        code, rule, message, hint = b.args4
        line0, col0 = b.where or (0, 0)
        return Source(path, None, smap, [_diag(code, rule, message, _point(path, line0, col0, lines), hint)])
    except RecursionError:
        return Source(path, None, smap, [_diag("MS006", "nesting-too-deep", "the document nests too deeply",
                                               _point(path, 0, 0, lines), "Flatten the structure")])
    smap.entries = walker.entries
    smap.entries[()] = NodeSpan(key=None, value=_point(path, 0, 0, lines))
    return Source(path, data, smap, [])


def _first_line(message: str) -> str:
    return " ".join(message.strip().splitlines()[:1]) or "invalid YAML"


def _yaml_error(e: Any, path: str, lines: list[str]) -> Diagnostic:
    from ruamel.yaml.constructor import DuplicateKeyError

    mark = e.problem_mark or e.context_mark
    line0, col0 = (mark.line, mark.column) if mark else (0, 0)
    if isinstance(e, DuplicateKeyError):
        key = (e.problem or "").split('"')[1] if '"' in (e.problem or "") else "?"
        first = e.context_mark
        d = _diag("MS002", "duplicate-key", f"key `{key}` is defined twice in the same mapping",
                  _token_span(path, lines, line0, col0), f"Remove one of the two `{key}` keys")
        if first is not None:
            from .diagnostics import Related

            rel = Related(span=_point(path, first.line, first.column, lines), message="mapping starts here")
            d = Diagnostic(**{**_asdict(d), "related": (rel,)})
        return d
    problem = (e.problem or e.context or "invalid YAML").strip()
    if "could not determine a constructor" in problem:
        return _diag("MS001", "yaml-syntax-error", "custom YAML tags are not allowed in a spec",
                     _point(path, line0, col0, lines), "Remove the `!tag`; specs are plain YAML")
    return _diag("MS001", "yaml-syntax-error", f"invalid YAML: {problem}", _point(path, line0, col0, lines),
                 "Fix the YAML syntax at this position")


def _asdict(d: Diagnostic) -> dict:
    return {f: getattr(d, f) for f in d.__dataclass_fields__}


def load_source(path: str | Path, display: str | None = None) -> Source:
    """Read and parse one spec file. `display` is the path shown in diagnostics (default: as given)."""
    shown = display or str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            d = _diag("MS004", "file-too-large", f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,}",
                      Span(path=shown, line=1, col=1, end_line=1, end_col=2),
                      "Split the spec with `extends:`; a spec should be a page of YAML")
            return Source(shown, None, SourceMap(), [d])
        raw = p.read_bytes()
        text = raw.decode("utf-8-sig")
    except FileNotFoundError:
        return Source(shown, None, SourceMap(), [_diag("MS008", "file-not-found", f"`{shown}` does not exist",
                                                       None, "Check the path")])
    except (OSError, UnicodeDecodeError) as e:
        msg = "the file is not valid UTF-8" if isinstance(e, UnicodeDecodeError) else f"cannot read: {e.strerror}"
        return Source(shown, None, SourceMap(), [_diag("MS011", "file-unreadable", msg,
                                                       Span(path=shown, line=1, col=1, end_line=1, end_col=2),
                                                       "Save the spec as UTF-8 text")])
    return parse_text(text, shown)
