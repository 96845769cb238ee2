"""Stage 2b of the compiler: validate merged data against the pydantic `Spec`; errors become MS1xx.

Each pydantic error is mapped by its type to one diagnostic in the user's YAML vocabulary, located
through the SourceMap: unknown keys at the key, missing keys at the parent mapping, everything else
at the value. A failed union (`int | str`, `str | list`) yields one pydantic error per member; they
collapse into one diagnostic at the real YAML path. Unmapped types fall back to MS100 with `origin`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import codes
from ..codes import Code
from ..diagnostics import Diagnostic, Fix, Severity, Span, YamlPath, did_you_mean, listing
from .model_paths import choices_at, field_bounds, keys_at, pattern_kind
from .scalar_text import quote, unquote
from .source_map import SourceMap, editor_lines


@dataclass(frozen=True, slots=True)
class _Error:
    """One pydantic error with its loc resolved against the data."""

    type: str
    path: YamlPath  # the real YAML path (union member tags removed)
    group: YamlPath  # the path before the first union tag (== path when untagged)
    tag: str | None  # the first union member tag, e.g. "list[str]"
    value: Any
    is_key: bool  # the error is about the mapping key at `path` (`image.env` names), not its value
    ctx: dict[str, Any]
    msg: str


def build_spec(data: dict[str, Any], smap: SourceMap, *, base: bool = False) -> tuple[Any, list[Diagnostic]]:
    """Validate `data` as a spec (or, `base=True`, as a base file: no `name` needed); return
    `(Spec, [])` or `(None, diagnostics)`."""
    from pydantic import ValidationError

    from .model import BaseSpec, Spec

    try:
        return (BaseSpec if base else Spec).model_validate(data), []
    except ValidationError as e:
        errors = [_resolve(err, data) for err in e.errors(include_url=False)]
    return None, [_diagnose(err, smap) for err in _collapse_unions(errors, data)]


def _resolve(err: dict[str, Any], data: Any) -> _Error:
    """Walk `loc` through the data; string parts that are not keys there are union member tags."""
    cur, path, group, tag = data, [], None, None
    loc = list(err["loc"])
    is_key = loc[-1:] == ["[key]"]
    if is_key:
        loc.pop()
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            cur = cur[part]
        elif err["type"] == "missing" and i == len(loc) - 1:
            path.append(part)
            cur = None
            break
        elif isinstance(part, str):
            if group is None:
                group, tag = tuple(path), part
            continue
        path.append(part)
    return _Error(err["type"], tuple(path), group if group is not None else tuple(path), tag,
                  path[-1] if is_key and path else cur, is_key, dict(err.get("ctx") or {}), err.get("msg", ""))


def _kind(value: Any) -> str:
    """The YAML kind of a plain value, named like pydantic's union member tags."""
    return {bool: "bool", str: "str", int: "int", float: "float", list: "list", dict: "dict"}.get(type(value), "null")


def _member_kind(tag: str) -> str:
    base = tag.removeprefix("constrained-").split("[", 1)[0].lower()
    return base if base in ("str", "int", "float", "bool", "list", "dict") else "dict"


def _collapse_unions(errors: list[_Error], data: Any) -> list[_Error]:
    """Keep the errors of the union member matching the value's type; else one wrong-type error."""
    out: list[_Error] = []
    groups: dict[YamlPath, list[_Error]] = {}
    for err in errors:
        if err.tag is None:
            out.append(err)
        else:
            groups.setdefault(err.group, []).append(err)
    for group, members in groups.items():
        value = _value_at(data, group)
        matching = [m for m in members if _member_kind(m.tag or "") == _kind(value)]
        if matching:
            out.extend(matching)
        else:
            kinds = [_expected_kind(m).replace("`true` or `false`", "a boolean") for m in members]
            expected = _join_or(list(dict.fromkeys(kinds)))
            out.append(_Error("union_type", group, group, None, value, False, {"expected": expected}, ""))
    return out


def _value_at(data: Any, path: YamlPath) -> Any:
    for part in path:
        data = data[part]
    return data


_EXPECTED = {"str": "a string", "string": "a string", "int": "an integer", "float": "a number",
             "bool": "`true` or `false`", "list": "a list", "dict": "a mapping"}


def _expected_kind(err: _Error) -> str:
    """What the field wanted: from a `*_type` error, or from the union member the error belongs to."""
    if err.type == "union_type":
        return err.ctx["expected"]
    if err.type.endswith(("_type", "_parsing")):
        return _EXPECTED.get(err.type.rsplit("_", 1)[0], "a mapping")  # model_type, model_attributes_type
    return _EXPECTED[_member_kind(err.tag or "")]


def _join_or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def dotted(path: YamlPath) -> str:
    """`("buckets", "corpus", "mount")` -> `buckets.corpus.mount`; list items as `[0]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the spec"


def _source_text(smap: SourceMap, path: YamlPath, value: Any) -> str:
    """The value as the user wrote it (`3.10`, not `3.1`), for scalars on one line."""
    span = smap.value_span(path) if smap.node(path) else None
    lines = editor_lines(smap.texts.get(span.path, "")) if span else []
    if span and span.line == span.end_line and span.line <= len(lines):
        token = lines[span.line - 1][span.col - 1:span.end_col - 1].strip()
        if token and token[0] not in "[{|>":
            return token
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _shown(smap: SourceMap, path: YamlPath, value: Any) -> str:
    """How the actual value appears in a message: `5`, `"x"`, a list, a mapping, empty."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    text = _source_text(smap, path, value)
    return f"`{text[:60]}{'…' if len(text) > 60 else ''}`"


def _diagnose(err: _Error, smap: SourceMap) -> Diagnostic:
    wrong_type = _wrong_type if err.type.endswith(("_type", "_parsing")) else _schema_error
    code, message, hint = _HANDLERS.get(err.type, wrong_type)(err, smap)
    if err.type == "missing":
        span = smap.key_span(err.path[:-1]) if err.path[:-1] else smap.value_span(())
    elif err.type == "extra_forbidden" or err.is_key:
        span = smap.key_span(err.path)
    else:
        span = smap.value_span(err.path)
    fix = _type_fix(err, span, smap) if code is codes.WRONG_TYPE and span is not None else None
    hint = hint or _fallback_hint(err.path)
    return Diagnostic(code=code.code, rule=code.name, severity=Severity.ERROR, message=message, span=span,
                      yaml_path=err.path, hint=hint, origin=err.type, fix=fix)


def _fallback_hint(path: YamlPath) -> str:
    """Every diagnostic carries a fix: the field's choices when it has some, else where to look."""
    choices = [str(c) for c in choices_at(path)]
    if choices:
        return f"Use one of {listing(choices)}" if len(choices) > 1 else f"Write `{dotted(path)}: {choices[0]}`"
    return f"Check `{dotted(path)}` against the spec reference (`megaspec schema`)"


def _unknown_key(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    key, parent = str(err.path[-1]), err.path[:-1]
    where = f"in `{dotted(parent)}`" if parent else "at the top level"
    valid = keys_at(parent)
    if key == "<<":
        hint = ("YAML merge keys (`<<: *anchor`) are not supported: they hide where a value came from. "
                "Put the shared settings in a base spec and name it in `extends:`")
    else:
        hint = did_you_mean(key, valid) or f"Remove it; valid keys here: {listing(valid)}"
    return codes.UNKNOWN_KEY, f"unknown key `{key}` {where}", hint


def _missing_key(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    key, parent = str(err.path[-1]), err.path[:-1]
    owner = f"`{dotted(parent)}` is" if parent else "the spec is"
    message = f"{owner} missing the required {'key' if parent else 'top-level key'} `{key}`"
    hint = "Add `megaspec: 1` at the top of the file" if err.path == ("megaspec",) else f"Add `{key}: ...`"
    return codes.MISSING_KEY, message, hint


def _wrong_type(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    expected = _expected_kind(err)
    shown = _shown(smap, err.path, err.value)
    message = f"`{dotted(err.path)}` must be {expected}, not {shown}"
    return codes.WRONG_TYPE, message, _type_hint(expected, err, smap) or f"Write {expected} here"


def _type_fix(err: _Error, span: Span, smap: SourceMap) -> Fix | None:
    """The MS103 repairs whose result is certain to have the right type: quote a number or boolean a
    string field got, unquote a number or boolean a number or boolean field got as a string."""
    original = smap.text_at(span)
    if original is None:
        return None
    anchor, scalar = _ANCHORED.match(original).groups()
    if scalar.startswith("!"):  # a tag decides the type: quoting behind `!!float` would still be a float
        return None
    expected, kind, inner = _expected_kind(err), _kind(err.value), unquote(scalar)
    if expected.startswith("a string") and kind in ("int", "float", "bool"):
        title, replacement = "Quote it", quote(scalar)
    elif expected.startswith("an integer") and kind == "str" and inner and _INTEGER.match(inner):
        title, replacement = "Remove the quotes", inner
    elif expected.startswith("a number") and kind == "str" and inner and _NUMBER.match(inner):
        title, replacement = "Remove the quotes", inner
    elif expected == "`true` or `false`" and kind == "str" and inner in ("true", "false"):
        title, replacement = "Remove the quotes", inner
    else:
        return None
    return Fix(title=title, span=span, original=original, replacement=anchor + replacement) if replacement else None


_ANCHORED = re.compile(r"((?:&\S+\s+)?)(.*)", re.DOTALL)  # `&py 3.10`: the anchor stays in front of the fix


def _type_hint(expected: str, err: _Error, smap: SourceMap) -> str | None:
    value, kind = err.value, _kind(err.value)
    if expected.startswith("a string") and kind in ("int", "float", "bool"):
        return f'Quote it: `"{_source_text(smap, err.path, value)}"`'
    if expected == "`true` or `false`":
        return "Write `true` or `false` without quotes"
    if expected.startswith(("an integer", "a number")) and kind == "str" and _NUMBER.match(value):
        return f"Remove the quotes: `{value}`"
    if expected.startswith("an integer") and kind == "float" and float(value).is_integer():
        return f"Write it without a decimal point: `{int(value)}`"
    if expected == "a mapping":
        keys = keys_at(err.path)
        return f"Write it as a mapping with keys like {listing(keys)}" if keys else "Write it as a mapping"
    if expected == "a list" and kind != "dict":
        return f"Write it as a list: `[{_source_text(smap, err.path, value)}]`"
    return None


_INTEGER = re.compile(r"^[-+]?\d+$")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


_BOUND_WORDS = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
                "less_than_equal": "at most"}


def _out_of_range(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    where, shown = dotted(err.path), _shown(smap, err.path, err.value)
    if err.type in _BOUND_WORDS:
        limit = next(iter(err.ctx.values()), "?")
        message = f"`{where}` must be {_BOUND_WORDS[err.type]} {_number(limit)}, not {shown}"
    elif err.type.endswith(("too_short", "too_long")):
        short = err.type.endswith("short")
        limit = err.ctx.get("min_length" if short else "max_length", 1)
        unit = _plural(limit, "character" if err.type.startswith("string") else "entry")
        message = f"`{where}` {'needs at least' if short else 'allows at most'} {limit} {unit}; it has {_length(err.value)}"
    elif err.type == "finite_number":
        message = f"`{where}` must be a finite number, not {shown}"
    elif err.type == "int_parsing_size":
        message = f"`{where}` is far too large: {shown}"
    else:
        message = f"`{where}` is out of range: {shown}"
    return codes.OUT_OF_RANGE, message, _range_hint(err.path)


def _plural(n: Any, word: str) -> str:
    return word if n == 1 else ("entries" if word == "entry" else word + "s")


def _length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, dict)) else 0


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _range_hint(path: YamlPath) -> str | None:
    words = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
    bounds = field_bounds(path)
    if "ge" in bounds and "le" in bounds:
        return f"Use a value from {_number(bounds['ge'])} to {_number(bounds['le'])}"
    parts = [f"{words[k]} {_number(v)}" for k, v in bounds.items()]
    return "Use a value " + " and ".join(parts) if parts else None


def _invalid_choice(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    choices = sorted(str(c) for c in choices_at(err.path)) or [err.ctx.get("expected", "")]
    shown = _shown(smap, err.path, err.value)
    expected = f"`{choices[0]}`" if len(choices) == 1 else f"one of {listing(choices)}"
    message = f"{shown} is not a valid `{dotted(err.path)}`; expected {expected}"
    if not shown.startswith("`"):  # a mapping, a list or nothing: lead with the field
        message = f"`{dotted(err.path)}` must be {expected}, not {shown}"
    hint = did_you_mean(str(err.value), choices) or (
        f"Set `{dotted(err.path)}: {choices[0]}`" if len(choices) == 1 else f"Use one of {listing(choices)}")
    return codes.INVALID_CHOICE, message, hint


_FORMATS = {
    "duration": ("a duration", "Write it like `30m`, `2h`, `1h30m`"),
    "name": ("a valid name", "Use lowercase letters, digits, `.`, `-` and `_`, starting with a letter or digit"),
    "abspath": ("an absolute path", "Use an absolute path that starts with `/` and has no spaces"),
    "python": ("a Python version", 'Write a version like `"3.11"`'),
    "env": ("an environment variable name", "Use letters, digits and `_`, not starting with a digit (no `=`)"),
    "version": ("a version", "Write a version like `0.5.11`"),
    "size": ("a size", "Write a size like `16MiB`, `1GiB` or a number of bytes"),
    "wandb": ("a W&B name", "Use 1 to 128 characters without spaces or `/ \\ # ? % :` (a team goes in "
                            "`tracking.wandb.entity`)"),
}


def _invalid_format(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    where, shown = dotted(err.path), _shown(smap, err.path, err.value)
    noun, hint = _FORMATS.get(pattern_kind(err.path, err.ctx.get("pattern")), ("valid", None))
    if err.is_key:
        key = str(err.value).encode("unicode_escape").decode("ascii")[:60]
        return codes.INVALID_FORMAT, f"`{key}` in `{dotted(err.path[:-1])}` is not {noun}", hint
    if err.type == "value_error":
        reason = str(err.ctx.get("error", "")).split(";")[0] or "invalid value"
        return codes.INVALID_FORMAT, f"`{where}` is {shown}: {reason}", hint
    return codes.INVALID_FORMAT, f"{shown} in `{where}` is not {noun}", hint


def _gpu_request(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    """A `resources.gpu` entry `spec/gpu.py` could not parse: its code, message and hint are already decided."""
    return codes.STAGE_CODES[err.ctx["code"]], err.msg, err.ctx["hint"]


def _too_many_runs(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    return (codes.OUT_OF_RANGE, f"`{dotted(err.path)}` has {err.ctx['runs']} combinations; a sweep "
            f"may have at most {err.ctx['limit']} runs",
            "Vary fewer values at once, or split the sweep into several templates")


def _nul_character(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    return (codes.INVALID_FORMAT, f"`{dotted(err.path)}` holds a NUL character (`\\0`)",
            "Remove the `\\0` escape: no path, name or setting can contain a NUL")


def _schema_error(err: _Error, smap: SourceMap) -> tuple[Code, str, str | None]:
    return codes.SCHEMA_ERROR, f"`{dotted(err.path)}` is not valid: {err.msg}", None


_HANDLERS: dict[str, Callable[[_Error, SourceMap], tuple[Code, str, str | None]]] = {
    "extra_forbidden": _unknown_key,
    "missing": _missing_key,
    "union_type": _wrong_type,
    "literal_error": _invalid_choice,
    "enum": _invalid_choice,
    "string_pattern_mismatch": _invalid_format,
    "value_error": _invalid_format,
    "gpu_request": _gpu_request,
    "too_many_runs": _too_many_runs,
    "nul_character": _nul_character,
    **{t: _out_of_range for t in ("greater_than", "greater_than_equal", "less_than", "less_than_equal",
                                  "too_short", "too_long", "string_too_short", "string_too_long",
                                  "multiple_of", "finite_number", "int_parsing_size")},
}
