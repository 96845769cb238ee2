"""The value types the spec's fields are made of, and `Section`, the base of every block of the Spec.

Each type carries what it accepts and what `schema.json` says of it: integers (`40.0` is 40, `true`
is not a number), durations (`1h30m` -> seconds), names, absolute paths, environment names, the
GPU request (parsed once into `GpuChoices`), and the bounds the fields share. `model.py` builds the
Spec from them.
"""

import math
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from megaspec.runtime.contract.vocabulary import NAME_PATTERN

from .gpu import GpuChoices, parse_gpus

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


DURATION_PATTERN = r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
# The distribution an `image.packages` requirement names, as written (`Torch_Foo` in `Torch_Foo[x]==1`).
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def package_name(requirement: str) -> str:
    """The distribution a requirement names, normalized: `Torch_Foo[x]==1` -> `torch-foo`."""
    m = REQUIREMENT_NAME.match(requirement)
    return m[1].lower().replace("_", "-") if m else requirement


def _nonzero_duration_pattern() -> str:
    """DURATION_PATTERN with at least one non-zero part: what `parse_duration` accepts, as a regex any
    JSON Schema engine runs (no lookahead): one alternative per unit holding the non-zero digit.
    The schema gets it; the linter matches the plain pattern, so `0s` gets `parse_duration`'s reason."""
    def part(unit: str, nonzero: bool) -> str:
        return rf"(\d*[1-9]\d*{unit})" if nonzero else rf"(\d+{unit})?"
    return "^(?:" + "|".join("".join(part(u, u == nz) for u in "dhms") for nz in "dhms") + ")$"


def parse_duration(value: int | str) -> int:
    """`2h`, `30m`, `1h30m`, `90s`, `1d` or an integer number of seconds -> seconds."""
    if isinstance(value, int):
        return _bounded_duration(value)
    m = _DURATION.match(value.strip()) if len(value) <= 40 else None
    if not m or not any(m.groups()):
        raise ValueError(f"`{value}` is not a duration; write it like `30m`, `2h`, `1h30m` or `90s`")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return _bounded_duration(((d * 24 + h) * 60 + mi) * 60 + s)


MAX_DURATION_S = 366 * 24 * 3600


def _bounded_duration(seconds: int) -> int:
    if seconds < 1:
        raise ValueError("a duration must be at least 1 second")
    if seconds > MAX_DURATION_S:
        raise ValueError("a duration must be at most 366 days")
    return seconds


def not_bool(value: object) -> object:
    """A choice of numbers (`1`, `2`) is not met by `true`, though Python's `True == 1`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not `{str(value).lower()}`")
    return value


class IntegerField:
    """Marks an integer field: strict (no `"40"`, no `true`), but `40.0` is 40, as JSON Schema (and so
    every editor) reads it. The Spec converts such floats once, before validation
    (`document_checks.integral_floats`), so the field stays a plain `int` with its bounds in the schema."""


INTEGER = IntegerField()
Int = Annotated[int, INTEGER]
Duration = Annotated[
    Annotated[Int, Field(json_schema_extra={"minimum": 1, "maximum": MAX_DURATION_S})]
    | Annotated[str, Field(pattern=DURATION_PATTERN, json_schema_extra={
        "pattern": _nonzero_duration_pattern(),
        "patternErrorMessage": "a duration like `30m`, `2h`, `1h30m` or `90s`, at least 1 second"})],
    AfterValidator(parse_duration),
]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
AbsPath = Annotated[str, Field(pattern=r"^/[^\s\x00]*$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Scalar = str | int | float | bool
MAX_SWEEP_RUNS = 1000  # runs one sweep template may expand to (the matrix product, before `exclude`)
MAX_STEPS = 10_000_000
MAX_SEQUENCES = 1 << 20  # sequences in a batch or a sequence's tokens: far past any real run


def bounded_matrix(matrix: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The product is counted, never expanded: a 10^12-run matrix is refused in microseconds."""
    runs = math.prod(len(values) for values in matrix.values())
    if runs > MAX_SWEEP_RUNS:
        raise PydanticCustomError("too_many_runs", "the matrix has {runs} combinations; the limit is {limit}",
                                  {"runs": f"{runs:,}", "limit": f"{MAX_SWEEP_RUNS:,}"})
    return matrix


def _gpu_choices(value: str | list[str]) -> GpuChoices:
    """The one parse of `resources.gpu`; each bad entry is an error at its own YAML path."""
    choices, errors = parse_gpus(value)
    if choices is None:
        raise ValidationError.from_exception_data("resources.gpu", [InitErrorDetails(
            type=PydanticCustomError("gpu_request", e.message, {"code": e.code.code, "hint": e.hint}),
            loc=() if e.index is None else (e.index,), input=value if e.index is None else value[e.index],
        ) for e in errors])
    return choices


class _GpuField:
    """`AfterValidator(_gpu_choices)` and `PlainSerializer(GpuChoices.as_written)` as one core schema
    (pydantic's serializer helpers are a module and three dataclasses more at every start)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            _gpu_choices, handler(source), serialization=core_schema.plain_serializer_function_ser_schema(
                GpuChoices.as_written))


# YAML takes `TYPE[:COUNT]` or a list of fallbacks (that is the schema); the validated value is a
# `GpuChoices` (dumped back as written).
Gpu = Annotated[str | list[str], _GpuField]


class Section(BaseModel):
    """Every block of the spec: strict types, no unknown keys, finite floats (and, checked by the Spec
    once for all blocks, no NUL in any string: `document_checks.py`)."""

    # Built on first use: a section is validated inside a Spec, and a default section when first made.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True)
