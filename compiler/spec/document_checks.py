"""Two checks the Spec makes over the whole document, once per validation instead of in a validator
on every field (a hundred field validators made every lint's start-up ~10 ms slower):

- before validation, `integral_floats`: `40.0` in an integer field (`field_types.Int`) is the integer
  40, as JSON Schema (and so every editor) reads it; `40.5` is left for the field to refuse;
- after validation, `nul_errors`: no string anywhere (value or mapping key) holds a NUL, so no path,
  name or setting can carry one to the OS. Each NUL is an error at its own YAML path.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .field_types import INTEGER

# What a field holds, for the integral-float pass: an integer (or a list of them), a block, a mapping of blocks.
_Kind = typing.Union["type[BaseModel]", tuple[str, "type[BaseModel]"], object, None]


def _kind(annotation: Any) -> _Kind:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return INTEGER if any(m is INTEGER for m in args[1:]) else _kind(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin in (typing.Union, types.UnionType):
        kinds = {_kind(a) for a in args} - {None}
        return INTEGER if INTEGER in kinds else (kinds.pop() if len(kinds) == 1 else None)
    if origin is list:
        return INTEGER if _kind(args[0]) is INTEGER else None
    if origin is dict:
        block = _kind(args[1])
        return ("map", block) if isinstance(block, type) else None
    return None


@functools.cache
def _field_kinds(model: type[BaseModel]) -> dict[str, _Kind]:
    """YAML key -> kind, for the fields of `model` that hold integers or blocks."""
    kinds = {}
    for name, field in model.model_fields.items():
        kind = INTEGER if INTEGER in field.metadata else _kind(field.annotation)
        if kind is not None:
            kinds[field.alias or name] = kind
    return kinds


def integral_floats(data: Any, model: type[BaseModel]) -> Any:
    """`data` (the input of `model`) with each integral float of an integer field made an int."""
    if not isinstance(data, dict):
        return data
    kinds = _field_kinds(model)
    return {key: _integral(value, kinds[key]) if key in kinds else value for key, value in data.items()}


def _integral(value: Any, kind: _Kind) -> Any:
    if kind is INTEGER:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return [_integral(v, INTEGER) for v in value] if isinstance(value, list) else value
    if isinstance(kind, tuple):
        return {k: integral_floats(v, kind[1]) for k, v in value.items()} if isinstance(value, dict) else value
    return integral_floats(value, kind)  # a block


def nul_errors(block: BaseModel) -> ValidationError | None:
    """One error per NUL in a validated block and the blocks inside it, located at its YAML path."""
    found = list(_nuls(block, ()))
    if not found:
        return None
    return ValidationError.from_exception_data(type(block).__name__, [InitErrorDetails(
        type=PydanticCustomError("nul_character", "it holds a NUL character (`\\0`)"), loc=loc, input=value)
        for loc, value in found])


def _nuls(value: Any, path: tuple[str | int, ...]) -> typing.Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, str):
        if "\x00" in value:
            yield path, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from _nuls(getattr(value, name), (*path, field.alias or name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nuls(key, (*path, key)) if "\x00" in key else _nuls(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _nuls(item, (*path, i))
