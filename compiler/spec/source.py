"""Stage 1 of the compiler: read one YAML file into plain data plus a source map.

The source map records, for every YAML path, the 1-based span of the key and of the value, so
every later diagnostic can point at the line the user wrote. Input is bounded: file size, alias
expansion and nesting depth are capped, so a YAML bomb is a located error in milliseconds.
Problems come back as MS0xx diagnostics, never as exceptions.
"""

from __future__ import annotations

import functools
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import codes
from ..codes import Code
from ..diagnostics import Diagnostic, Severity, Span
from .source_map import LineIndex, NodeSpan, SourceMap, editor_lines
from .yaml_nodes import MAX_DEPTH, MAX_NODES, NodeWalker, WalkError

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a spec is a page, not a data set
MAX_LINES = 10_000


@dataclass
class Source:
    path: str
    data: Any  # plain dict/list/str/int/float/bool/None; None when loading failed
    smap: SourceMap
    diagnostics: list[Diagnostic]


def _diag(code: Code, message: str, span: Span | None, hint: str) -> Diagnostic:
    return Diagnostic(code=code.code, rule=code.name, severity=Severity.ERROR, message=message, span=span, hint=hint)


def _point(path: str, line0: int, col0: int, lines: list[str]) -> Span:
    """A span from a 0-based editor line and column to the end of that line's text."""
    text = lines[line0] if 0 <= line0 < len(lines) else ""
    end = len(text.rstrip()) + 1 if len(text.rstrip()) > col0 else col0 + 2
    return Span(path=path, line=line0 + 1, col=col0 + 1, end_line=line0 + 1, end_col=end)


def _tab_indent(path: str, lines: list[str]) -> Diagnostic | None:
    for i, line in enumerate(lines):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped)
            span = Span(path=path, line=i + 1, col=col + 1, end_line=i + 1, end_col=col + 2)
            return _diag(codes.TAB_INDENTATION, "a tab is used for indentation", span,
                         "Indent with spaces; YAML does not allow tabs in indentation")
    return None


def _too_many_values(path: str, text: str, lines: list[str]) -> Diagnostic | None:
    """A document far past the node budget, refused before composing it (ruamel takes seconds on 50,000
    keys): more lines than MAX_LINES, or more separators (`:`, `,`, `- `) than twice MAX_NODES."""
    separators = text.count(":") + text.count(",") + text.count("- ")
    if len(lines) <= MAX_LINES and separators <= 2 * MAX_NODES:
        return None
    what = f"{len(lines):,} lines" if len(lines) > MAX_LINES else f"about {separators:,} values"
    return _diag(codes.FILE_TOO_LARGE, f"the document has {what}; a spec holds at most {MAX_NODES:,} values "
                 f"in {MAX_LINES:,} lines", _point(path, 0, 0, lines),
                 "Split the spec with `extends:`; a spec is a page of YAML, a few hundred values")


def _flow_depth(text: str) -> tuple[int, int]:
    """Deepest `[`/`{` nesting and the offset where it is reached (a cheap pre-check; only the
    brackets are visited, so a block-style spec costs one scan)."""
    depth = best = where = 0
    for m in _BRACKETS.finditer(text):
        if m.group() in "[{":
            depth += 1
            if depth > best:
                best, where = depth, m.start()
        else:
            depth = max(0, depth - 1)
    return best, where


_BRACKETS = re.compile(r"[\[\]{}]")


def offset_span(path: str, text: str, start: int, end: int | None = None) -> Span:
    """The span of `text[start:end]` (one character when `end` is None), 1-based and end-exclusive."""
    end = start + 1 if end is None else max(end, start + 1)
    line0 = text.count("\n", 0, start)
    col0 = start - (text.rfind("\n", 0, start) + 1)
    end_line0 = line0 + text.count("\n", start, end - 1)
    end_col0 = end - (text.rfind("\n", 0, end - 1) + 1)
    return Span(path=path, line=line0 + 1, col=col0 + 1, end_line=end_line0 + 1, end_col=end_col0 + 1)


FORMAT_KEY = re.compile(r"^megaspec[ \t]*:", re.MULTILINE)


def _failed(path: str, text: str, diagnostics: list[Diagnostic]) -> Source:
    """A file that did not load: its text is kept for snippets only if it claims to be a spec
    (a `megaspec:` key), so no report ever prints a file such as `/proc/self/environ`."""
    return Source(path, None, SourceMap(texts={path: text} if FORMAT_KEY.search(text) else {}), diagnostics)


def parse_text(text: str, path: str) -> Source:
    """Parse YAML text; `path` is the display path used in spans."""
    lines = editor_lines(text)
    if tab := _tab_indent(path, lines):
        return _failed(path, text, [tab])
    if too_big := _too_many_values(path, text, lines):
        return _failed(path, text, [too_big])
    depth, where = _flow_depth(text)
    if depth > MAX_DEPTH:
        d = _diag(codes.NESTING_TOO_DEEP, f"the document nests deeper than {MAX_DEPTH} levels",
                  offset_span(path, text, where), "Flatten the structure; a spec is at most a few levels deep")
        return _failed(path, text, [d])

    index = LineIndex(text)
    doc, error = _compose(_yaml(), text, path, lines, index)
    if error is not None:
        return _failed(path, text, [error])
    if doc is None or doc.id != "mapping":
        kind = "empty" if doc is None else "not a mapping"
        d = _diag(codes.DOCUMENT_NOT_A_MAPPING, f"the spec is {kind}", _point(path, 0, 0, lines),
                  "Start the file with `megaspec: 1` and `name: ...` at the top level")
        return _failed(path, text, [d])
    walker = NodeWalker(path, lines, index)
    try:
        data = walker.walk(doc, (), 0)
    except WalkError as b:
        return _failed(path, text, [b.diagnostic])
    except RecursionError:
        return _failed(path, text, [_diag(codes.NESTING_TOO_DEEP, "the document nests too deeply",
                                               _point(path, 0, 0, lines), "Flatten the structure")])
    smap = SourceMap(entries=walker.entries, texts={path: text})
    smap.entries[()] = NodeSpan(key=None, value=_root_span(smap, path, lines))
    return Source(path, data, smap, [])


def _root_span(smap: SourceMap, path: str, lines: list[str]) -> Span:
    """Where a diagnostic about the whole document (a missing top-level key) points: the line of its
    first key, not line 1, which is often a comment (the `# yaml-language-server` modeline)."""
    keys = [s.key for p, s in smap.entries.items() if len(p) == 1 and s.key is not None]
    first = min(keys, key=lambda k: (k.line, k.col), default=None)
    return _point(path, first.line - 1, first.col - 1, lines) if first else _point(path, 0, 0, lines)


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


def _compose(yaml: Any, text: str, path: str, lines: list[str], index: LineIndex) -> tuple[Any, Diagnostic | None]:
    """YAML text -> node graph; no Python objects are built, so nothing can execute or explode."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        return yaml.compose(text), None
    except MarkedYAMLError as e:
        return None, _yaml_error(e, path, lines, index)
    except ReaderError as e:  # a control character; its offset is in bytes or characters by parser, so find it
        where = max(0, text.find(chr(e.character))) if isinstance(e.character, int) else 0
        return None, _diag(codes.YAML_SYNTAX_ERROR, f"invalid YAML: the character U+{ord(text[where]):04X} "
                           "is not allowed in YAML", offset_span(path, text, where),
                           "Remove the control character, or write it as an escape in a double-quoted string")
    except YAMLError as e:
        return None, _diag(codes.YAML_SYNTAX_ERROR, _first_line(str(e)), _point(path, 0, 0, lines),
                           "Fix the YAML syntax")
    except RecursionError:
        return None, _diag(codes.NESTING_TOO_DEEP, "the document nests too deeply",
                           _point(path, 0, 0, lines), "Flatten the structure")


def _first_line(message: str) -> str:
    return " ".join(message.strip().splitlines()[:1]) or "invalid YAML"


def _yaml_error(e: Any, path: str, lines: list[str], index: LineIndex) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line0, col0 = index.point(mark.index) if mark else (0, 0)
    problem = (e.problem or e.context or "invalid YAML").strip()
    if problem == "but found another document":
        return _diag(codes.YAML_SYNTAX_ERROR, "the file holds a second YAML document",
                     _point(path, line0, col0, lines), "Keep one spec per file: move this document to a file of its own")
    return _diag(codes.YAML_SYNTAX_ERROR, f"invalid YAML: {problem}", _point(path, line0, col0, lines),
                 "Fix the YAML syntax at this position")


def read_spec_bytes(path: str | Path) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES.

    Opened without blocking (a FIFO named `x.yaml` must not hang the linter) and checked as a
    regular file on the open descriptor (not `/dev/zero`, `/dev/urandom`, a socket or a directory),
    then read up to one byte past the cap. Raises FileNotFoundError, `SpecFileError`, or OSError.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecFileError("not-regular", "it is not a regular file (a device, a pipe or a directory)")
        if info.st_size > MAX_FILE_BYTES:
            raise SpecFileError("too-large", f"the file is {info.st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}")
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_BYTES:  # it grew while being read
            raise SpecFileError("too-large", f"the file is over {MAX_FILE_BYTES:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


class SpecFileError(Exception):
    """A path that exists but is no readable spec file: `kind` is `not-regular` or `too-large`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def load_source(path: str | Path, display: str | None = None) -> Source:
    """Read and parse one spec file. `display` is the path shown in diagnostics (default: as given)."""
    shown = display or str(path)
    first = Span(path=shown, line=1, col=1, end_line=1, end_col=2)
    try:
        text = read_spec_bytes(path).decode("utf-8-sig")
    except FileNotFoundError:
        from .near_files import did_you_mean_file

        return Source(shown, None, SourceMap(), [_diag(codes.FILE_NOT_FOUND, f"`{shown}` does not exist",
                                                       None, f"Check the path.{did_you_mean_file(Path(path))}")])
    except SpecFileError as e:
        if e.kind == "too-large":
            return Source(shown, None, SourceMap(), [_diag(codes.FILE_TOO_LARGE, str(e), first,
                                                           "Split the spec with `extends:`; a spec should be a page of YAML")])
        return Source(shown, None, SourceMap(), [_diag(codes.FILE_UNREADABLE, f"cannot read `{shown}`: {e}",
                                                       first, "Name a spec file (`*.yaml`)")])
    except (OSError, ValueError, UnicodeDecodeError) as e:  # ValueError: a NUL in the path
        if isinstance(e, UnicodeDecodeError):
            msg, span, hint = "the file is not valid UTF-8", first, "Save the spec as UTF-8 text"
        else:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "the path is not valid"
            msg, span, hint = f"cannot read `{shown}`: {reason}", first, "Check the path"
        return Source(shown, None, SourceMap(), [_diag(codes.FILE_UNREADABLE, msg, span, hint)])
    return parse_text(text, shown)
