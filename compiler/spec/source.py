"""Stage 1 of the compiler: read one YAML file into plain data plus a source map.

The source map records, for every YAML path, the 1-based span of the key and of the value, so
every later diagnostic can point at the line the user wrote. Input is bounded: file size, alias
expansion and nesting depth are capped, so a YAML bomb is a located error in milliseconds.
Problems come back as MS0xx diagnostics, never as exceptions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, Related, Severity, Span, YamlPath

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

    def text_at(self, span: Span) -> str | None:
        """The source text a one-line span covers, or None (multi-line, or a file it does not hold)."""
        lines = self.texts.get(span.path, "").splitlines()
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


class _Budget(Exception):
    """A located problem found while walking the node graph (budgets, tags, duplicate keys)."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


_CORE_TAG = "tag:yaml.org,2002:"
# What plain YAML resolves to (`merge` is the `<<` key, which the model reports with a pointer to
# `extends:`). `!!python/...`, `!!binary`, `!!set` and the like are refused, never kept as text.
_PLAIN_KINDS = frozenset({"str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge"})


class _Walker:
    """Converts composed YAML nodes to plain data while recording spans, under node and depth budgets.

    Aliases are the same node object reached twice, so counting visits bounds alias expansion.
    """

    def __init__(self, path: str, lines: list[str], scalar: Callable[[str, str], Any]):
        self.path, self.lines, self.scalar = path, lines, scalar
        self.entries: dict[YamlPath, NodeSpan] = {}
        self.num_nodes = 0

    def span(self, node: Any) -> Span:
        start, end = node.start_mark, node.end_mark
        line0, col0 = start.line, start.column
        if end.line == line0 and end.column > col0:
            end_col = end.column + 1
        else:  # a block that spans lines: underline the rest of its first line
            text = self.lines[line0] if line0 < len(self.lines) else ""
            end_col = max(len(text.rstrip()), col0 + 1) + 1
        return Span(path=self.path, line=line0 + 1, col=col0 + 1, end_line=line0 + 1, end_col=end_col)

    def fail(self, node: Any, code: str, rule: str, message: str, hint: str, related: tuple = ()) -> _Budget:
        return _Budget(Diagnostic(code=code, rule=rule, severity=Severity.ERROR, message=message,
                                  span=self.span(node), hint=hint, related=related))

    def walk(self, node: Any, ypath: YamlPath, depth: int) -> Any:
        self.num_nodes += 1
        if self.num_nodes > MAX_NODES:
            raise self.fail(node, "MS005", "alias-expansion-too-large",
                            f"the document expands to more than {MAX_NODES:,} nodes",
                            "Remove the nested anchors and aliases (`&a` / `*a`): a spec does not need them")
        if depth > MAX_DEPTH:
            raise self.fail(node, "MS006", "nesting-too-deep", f"the document nests deeper than {MAX_DEPTH} levels",
                            "Flatten the structure; a spec is at most a few levels deep")
        tag = node.tag
        if not tag.startswith(_CORE_TAG) or tag[len(_CORE_TAG):] not in _PLAIN_KINDS:
            shown = f"!!{tag[len(_CORE_TAG):]}" if tag.startswith(_CORE_TAG) else tag
            raise self.fail(node, "MS001", "yaml-syntax-error", f"YAML tag `{shown}` is not allowed",
                            "Remove the tag; specs are plain YAML (strings, numbers, booleans, lists, mappings)")
        if node.id == "mapping":
            return self.mapping(node, ypath, depth)
        if node.id == "sequence":
            items = []
            for i, item in enumerate(node.value):
                child = (*ypath, i)
                self.entries[child] = NodeSpan(key=None, value=self.span(item))
                items.append(self.walk(item, child, depth + 1))
            return items
        return self.scalar(tag[len(_CORE_TAG):], node.value)

    def mapping(self, node: Any, ypath: YamlPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.walk(key_node, ypath, depth + 1) if key_node.id == "scalar" else None
            if not isinstance(key, str):
                raise self.fail(key_node, "MS001", "yaml-syntax-error", "a key must be a plain name",
                                "Write the key as text, like `steps:`")
            if key in first:
                related = (Related(span=self.span(first[key]), message="first defined here"),)
                raise self.fail(key_node, "MS002", "duplicate-key", f"key `{key}` is defined twice in the same mapping",
                                f"Remove one of the two `{key}` keys", related)
            first[key] = key_node
            child = (*ypath, key)
            self.entries[child] = NodeSpan(key=self.span(key_node), value=self.span(value_node))
            out[key] = self.walk(value_node, child, depth + 1)
        return out


_SPECIAL_FLOATS = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}


def _scalar(kind: str, text: str) -> Any:
    """A resolved YAML 1.2 core-schema scalar -> its Python value (the composer already chose `kind`)."""
    if kind == "str":
        return text
    if kind == "int":
        digits = text.replace("_", "")
        sign, body = (-1, digits[1:]) if digits[:1] == "-" else (1, digits.lstrip("+"))
        for prefix, base in (("0o", 8), ("0x", 16), ("0b", 2)):
            if body.lower().startswith(prefix):
                return sign * int(body[2:], base)
        return sign * int(body)
    if kind == "float":
        special = _SPECIAL_FLOATS.get(text.lower())
        return special if special is not None else float(text.replace("_", ""))
    if kind == "bool":
        return text.lower() == "true"
    if kind == "null":
        return None
    return text  # timestamps and other core types: keep the text; the model will judge it


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


def offset_span(path: str, text: str, start: int, end: int | None = None) -> Span:
    """The span of `text[start:end]` (one character when `end` is None), 1-based and end-exclusive."""
    end = start + 1 if end is None else max(end, start + 1)
    line0 = text.count("\n", 0, start)
    col0 = start - (text.rfind("\n", 0, start) + 1)
    end_line0 = line0 + text.count("\n", start, end - 1)
    end_col0 = end - (text.rfind("\n", 0, end - 1) + 1)
    return Span(path=path, line=line0 + 1, col=col0 + 1, end_line=end_line0 + 1, end_col=end_col0 + 1)


def parse_text(text: str, path: str) -> Source:
    """Parse YAML text; `path` is the display path used in spans."""
    smap = SourceMap(texts={path: text})
    lines = text.splitlines()
    if tab := _tab_indent(path, lines):
        return Source(path, None, smap, [tab])
    depth, where = _flow_depth(text)
    if depth > MAX_DEPTH:
        d = _diag("MS006", "nesting-too-deep", f"the document nests deeper than {MAX_DEPTH} levels",
                  offset_span(path, text, where), "Flatten the structure; a spec is at most a few levels deep")
        return Source(path, None, smap, [d])

    yaml = _yaml()
    doc, error = _compose(yaml, text, path, lines)
    if error is not None:
        return Source(path, None, smap, [error])
    if doc is None or doc.id != "mapping":
        kind = "empty" if doc is None else "not a mapping"
        d = _diag("MS007", "document-not-a-mapping", f"the spec is {kind}", _point(path, 0, 0, lines),
                  "Start the file with `megaspec: 1` and `name: ...` at the top level")
        return Source(path, None, smap, [d])
    walker = _Walker(path, lines, _scalar)
    try:
        data = walker.walk(doc, (), 0)
    except _Budget as b:
        return Source(path, None, smap, [b.diagnostic])
    except RecursionError:
        return Source(path, None, smap, [_diag("MS006", "nesting-too-deep", "the document nests too deeply",
                                               _point(path, 0, 0, lines), "Flatten the structure")])
    smap.entries = walker.entries
    smap.entries[()] = NodeSpan(key=None, value=_point(path, 0, 0, lines))
    return Source(path, data, smap, [])


@functools.cache
def _yaml() -> Any:
    """A safe YAML 1.2 loader (the C parser when ruamel.yaml.clib is installed), built once per process.

    Building one costs more than composing a small spec; `compose` keeps no state between documents.
    """
    from ruamel.yaml import YAML  # deferred: keeps `import megaspec.compiler` cheap
    from ruamel.yaml.resolver import VersionedResolver

    class TableOnceResolver(VersionedResolver):
        """ruamel's YAML 1.2 resolver, looking its rule table up once per document instead of per scalar.

        The lookup re-derives the YAML version through several failing attribute probes; it was half
        of the compose time of a spec. A loader (and so this resolver) is made per document, and the
        version is fixed before the first scalar is resolved, so the table cannot change under it.
        """

        _table: Any = None

        @property
        def versioned_resolver(self) -> Any:
            if self._table is None:
                self._table = VersionedResolver.versioned_resolver.fget(self)
            return self._table

    yaml = YAML(typ="safe")
    yaml.Resolver = TableOnceResolver
    return yaml


def _compose(yaml: Any, text: str, path: str, lines: list[str]) -> tuple[Any, Diagnostic | None]:
    """YAML text -> node graph; no Python objects are built, so nothing can execute or explode."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return yaml.compose(text), None
    except MarkedYAMLError as e:
        return None, _yaml_error(e, path, lines)
    except YAMLError as e:
        return None, _diag("MS001", "yaml-syntax-error", _first_line(str(e)), _point(path, 0, 0, lines),
                           "Fix the YAML syntax")
    except RecursionError:
        return None, _diag("MS006", "nesting-too-deep", "the document nests too deeply",
                           _point(path, 0, 0, lines), "Flatten the structure")


def _first_line(message: str) -> str:
    return " ".join(message.strip().splitlines()[:1]) or "invalid YAML"


def _yaml_error(e: Any, path: str, lines: list[str]) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line0, col0 = (mark.line, mark.column) if mark else (0, 0)
    problem = (e.problem or e.context or "invalid YAML").strip()
    if problem == "but found another document":
        return _diag("MS001", "yaml-syntax-error", "the file holds a second YAML document",
                     _point(path, line0, col0, lines), "Keep one spec per file: move this document to a file of its own")
    return _diag("MS001", "yaml-syntax-error", f"invalid YAML: {problem}", _point(path, line0, col0, lines),
                 "Fix the YAML syntax at this position")


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
