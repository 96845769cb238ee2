"""What the Spec model declares at a YAML path: valid keys, choices, numeric bounds, string format.

`validate.py` reads these to write hints in the user's vocabulary; they come from the model itself,
so a hint can never list a key or a choice the model does not accept.
"""

from __future__ import annotations

import typing
from typing import Any

from ..diagnostics import YamlPath


def _members(annotation: Any) -> list[tuple[Any, list[Any]]]:
    """Union members of `annotation`, each with its `Annotated` metadata, `None` dropped."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata.extend(extra)
    if typing.get_origin(annotation) in (typing.Union, _UnionType):
        out = []
        for member in typing.get_args(annotation):
            out.extend((a, metadata + m) for a, m in _members(member))
        return out
    return [] if annotation is type(None) else [(annotation, metadata)]


_UnionType = type(int | str)


def _step(annotation: Any, part: str | int) -> tuple[Any, list[Any]] | None:
    from pydantic import BaseModel

    for member, _ in _members(annotation):
        origin = typing.get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(part, str):
            for name, info in member.model_fields.items():
                if (info.alias or name) == part:
                    return info.annotation, list(info.metadata)
        elif origin is dict and isinstance(part, str):
            return typing.get_args(member)[1], []
        elif origin is list and isinstance(part, int):
            return typing.get_args(member)[0], []
    return None


def _field_at(path: YamlPath) -> tuple[Any, list[Any]] | None:
    """The annotation and constraint metadata the Spec declares at `path`."""
    from .model import Spec

    found: tuple[Any, list[Any]] | None = (Spec, [])
    for part in path:
        found = _step(found[0], part) if found else None
    return found


def keys_at(path: YamlPath) -> list[str]:
    """Valid keys of the mapping at `path` (sorted), or [] when it is not a fixed-key section."""
    from pydantic import BaseModel

    found = _field_at(path)
    for member, _ in _members(found[0]) if found else []:
        if isinstance(member, type) and issubclass(member, BaseModel):
            return sorted(info.alias or name for name, info in member.model_fields.items())
    return []


def choices_at(path: YamlPath) -> list[Any]:
    found = _field_at(path)
    return [arg for member, _ in (_members(found[0]) if found else [])
            if typing.get_origin(member) is typing.Literal for arg in typing.get_args(member)]


def field_bounds(path: YamlPath) -> dict[str, Any]:
    """The `ge`/`gt`/`le`/`lt` constraints declared at `path`."""
    found = _field_at(path)
    return {k: getattr(m, k) for m in (found[1] if found else []) for k in ("ge", "gt", "le", "lt")
            if getattr(m, k, None) is not None}


def pattern_kind(path: YamlPath, pattern: str | None) -> str:
    """Which family of string format a field has, for the hint."""
    from .field_types import DURATION_PATTERN

    found = _field_at(path)
    if pattern == DURATION_PATTERN or (found and "parse_duration" in repr(found)):
        return "duration"
    text = pattern or ""
    for prefix, kind in (("^[a-z0-9]", "name"), ("^[A-Za-z_]", "env"), ("^/", "abspath"), ("^3\\.", "python"), ("^\\d+\\.\\d+", "version"),
                         ("^[^/", "wandb")):
        if text.startswith(prefix):
            return kind
    return "size" if "KiB" in text else "other"
