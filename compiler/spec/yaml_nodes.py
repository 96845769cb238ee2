"""A composed YAML node graph -> plain data and the span of every key and value, under budgets.

Only plain YAML is kept (strings, numbers, booleans, null, lists, mappings); tags, duplicate keys,
more than MAX_NODES values (alias expansion counted), nesting past MAX_DEPTH and huge integers are
located MS0xx errors (`WalkError`). `source.py` composes the nodes and calls the walker.
"""

from __future__ import annotations

from typing import Any

from .. import codes
from ..codes import Code
from ..diagnostics import Diagnostic, Related, Severity, Span, YamlPath
from .source_map import LineIndex, NodeSpan

MAX_NODES = 10_000  # plain-data nodes after alias expansion (a real spec has a few hundred)
MAX_DEPTH = 64
MAX_INT_DIGITS = 4300  # Python's own cap on str -> int; no spec field is near it (MS104 bounds them)


class WalkError(Exception):
    """A located problem found while walking the node graph (budgets, tags, duplicate keys)."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


_CORE_TAG = "tag:yaml.org,2002:"
# What plain YAML resolves to (`merge` is the `<<` key, which the model reports with a pointer to
# `extends:`). `!!python/...`, `!!binary`, `!!set` and the like are refused, never kept as text.
_PLAIN_KINDS = frozenset({"str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge"})


class NodeWalker:
    """Converts composed YAML nodes to plain data while recording spans, under node and depth budgets.

    Aliases are the same node object reached twice, so counting visits bounds alias expansion.
    """

    def __init__(self, path: str, lines: list[str], index: LineIndex):
        self.path, self.lines, self.index = path, lines, index
        self.entries: dict[YamlPath, NodeSpan] = {}
        self.num_nodes = 0
        self.collections: set[int] = set()  # ids of the mappings and sequences walked
        self.aliased = False  # whether one was reached twice (an alias)

    def span(self, node: Any) -> Span:
        line0, col0 = self.index.point(node.start_mark.index)
        end_line0, end_col0 = self.index.point(node.end_mark.index)
        if end_line0 == line0 and end_col0 > col0:
            end_col = end_col0 + 1
        else:  # a block that spans lines: underline the rest of its first line
            text = self.lines[line0] if line0 < len(self.lines) else ""
            end_col = max(len(text.rstrip()), col0 + 1) + 1
        return Span(path=self.path, line=line0 + 1, col=col0 + 1, end_line=line0 + 1, end_col=end_col)

    def fail(self, node: Any, code: Code, message: str, hint: str, related: tuple = ()) -> WalkError:
        return WalkError(Diagnostic(code=code.code, rule=code.name, severity=Severity.ERROR, message=message,
                                  span=self.span(node), hint=hint, related=related))

    def walk(self, node: Any, ypath: YamlPath, depth: int) -> Any:
        self.num_nodes += 1
        if self.num_nodes > MAX_NODES:
            raise self._too_many(node)
        if depth > MAX_DEPTH:
            raise self.fail(node, codes.NESTING_TOO_DEEP, f"the document nests deeper than {MAX_DEPTH} levels",
                            "Flatten the structure; a spec is at most a few levels deep")
        tag = _tag_text(node)
        if not tag.startswith(_CORE_TAG) or tag[len(_CORE_TAG):] not in _PLAIN_KINDS:
            shown = f"!!{tag[len(_CORE_TAG):]}" if tag.startswith(_CORE_TAG) else tag
            raise self.fail(node, codes.YAML_SYNTAX_ERROR, f"YAML tag `{shown}` is not allowed",
                            "Remove the tag; specs are plain YAML (strings, numbers, booleans, lists, mappings)")
        if node.id in ("mapping", "sequence"):
            self.aliased = self.aliased or id(node) in self.collections
            self.collections.add(id(node))
        if node.id == "mapping":
            return self.mapping(node, ypath, depth)
        if node.id == "sequence":
            items = []
            for i, item in enumerate(node.value):
                child = (*ypath, i)
                self.entries[child] = NodeSpan(key=None, value=self.span(item))
                items.append(self.walk(item, child, depth + 1))
            return items
        try:
            return scalar(tag[len(_CORE_TAG):], node.value)
        except OverflowError:
            raise self.fail(node, codes.NUMBER_TOO_LARGE,
                            f"the integer `{node.value[:20]}…` has {len(node.value):,} characters; "
                            f"megaspec reads integers of up to {MAX_INT_DIGITS:,} digits",
                            "Use a value in the field's range (`megaspec explain MS104`)") from None

    def _too_many(self, node: Any) -> WalkError:
        if self.aliased:
            return self.fail(node, codes.ALIAS_EXPANSION_TOO_LARGE,
                             f"the document expands to more than {MAX_NODES:,} nodes",
                             "Remove the nested anchors and aliases (`&a` / `*a`): a spec does not need them")
        return self.fail(node, codes.FILE_TOO_LARGE, f"the document holds more than {MAX_NODES:,} values",
                         "Split the spec with `extends:`; a spec is a page of YAML, a few hundred values")

    def mapping(self, node: Any, ypath: YamlPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.walk(key_node, ypath, depth + 1) if key_node.id == "scalar" else None
            if not isinstance(key, str):
                raise self.fail(key_node, codes.YAML_SYNTAX_ERROR, "a key must be a plain name",
                                "Write the key as text, like `steps:`")
            if key in first:
                related = (Related(span=self.span(first[key]), message="first defined here"),)
                raise self.fail(key_node, codes.DUPLICATE_KEY, f"key `{key}` is defined twice in the same mapping",
                                f"Remove one of the two `{key}` keys", related)
            first[key] = key_node
            child = (*ypath, key)
            self.entries[child] = NodeSpan(key=self.span(key_node), value=self.span(value_node))
            out[key] = self.walk(value_node, child, depth + 1)
        return out


def _tag_text(node: Any) -> str:
    """The node's resolved tag. ruamel's `node.tag` URI-decodes its suffix one character at a time on
    every new node (a third of composing a spec); a tag without a handle or a `%` escape is its suffix."""
    tag = getattr(node, "ctag", None)
    suffix = getattr(tag, "suffix", None)
    if getattr(tag, "handle", True) is None and isinstance(suffix, str) and "%" not in suffix:
        return suffix
    return node.tag


_SPECIAL_FLOATS = {".inf": float("inf"), "+.inf": float("inf"), "-.inf": float("-inf"), ".nan": float("nan")}


def scalar(kind: str, text: str) -> Any:
    """A resolved YAML 1.2 core-schema scalar -> its Python value (the composer already chose `kind`)."""
    if kind == "str":
        return text
    if kind == "int":
        return _integer(text)
    if kind == "float":
        special = _SPECIAL_FLOATS.get(text.lower())
        return special if special is not None else float(text.replace("_", ""))
    if kind == "bool":
        return text.lower() == "true"
    if kind == "null":
        return None
    return text  # timestamps and other core types: keep the text; the model will judge it


def _integer(text: str) -> int | str:
    """A YAML int scalar -> int. ruamel's resolver also takes `0x_`, `0o_`, `0b_` (no digit at all):
    those are strings in YAML 1.2, so they stay text and the model says what the field expects.

    Raises OverflowError past MAX_INT_DIGITS digits (converting those is slow, and no field wants them).
    """
    digits = text.replace("_", "")
    sign, body = (-1, digits[1:]) if digits[:1] == "-" else (1, digits.lstrip("+"))
    base = 10
    for prefix, prefix_base in (("0o", 8), ("0x", 16), ("0b", 2)):
        if body.lower().startswith(prefix):
            body, base = body[2:], prefix_base
    if len(body) > MAX_INT_DIGITS:
        raise OverflowError(text)
    try:
        return sign * int(body, base)
    except ValueError:
        return text
