"""Modal GPU requests: the typed value of `resources.gpu`, parsed once, and the facts about each type.

The Modal client does not validate GPU names or counts (the server does, after you pay for the
image build), so megaspec does, while the spec is validated: `parse_gpus` turns the string (or the
list of fallbacks) into `GpuChoices` of known types with counts within the per-container limit, or
raises `GpuError`s that become located MS301/MS302 diagnostics. Everything after validation reads
the typed value. The facts per type (limits, memory, prices) are `runtime/contract/gpus.py`'s one table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from megaspec.runtime.contract.gpus import GPUS

from ..codes import GPU_COUNT_OVER_NODE_LIMIT, UNKNOWN_GPU_TYPE, Code
from ..diagnostics import did_you_mean, listing

# The facts per Modal type (per-container limit, memory, multi-node, the exact spelling, list
# price) are one table in the runtime, `runtime/contract/gpus.py`.
_TYPE_TIMES_COUNT = re.compile(r"^(.+?)[xX](\d+)$")  # `H100x8`, as people say it


@dataclass(frozen=True, slots=True)
class GpuRequest:
    """One checked `resources.gpu` entry: a Modal type megaspec knows, and a count it allows per node."""

    type: str  # canonical Modal type without "!" ("H100")
    count: int
    exact: bool  # written with "!" ("H100!"), which only H100 has
    text: str  # the entry as written in the spec ("h100:8")

    @property
    def canonical(self) -> str:
        """The entry in its canonical spelling: `h100!:8` -> `H100!:8`."""
        return f"{self.type}{'!' if self.exact else ''}:{self.count}"

    def modal_string(self, exact: bool = False) -> str:
        """What Modal is asked for: `H100:8` -> `H100!:8` when exact (written or `resources.exact`)."""
        return f"{modal_type(self.type, self.exact or exact)}:{self.count}"


def modal_type(type_: str, exact: bool) -> str:
    """The one decision of the exact spelling: `H100` -> `H100!`, `A100` -> `A100-40GB` (no silent 80 GB)."""
    return (GPUS[type_].exact or type_) if exact else type_


@dataclass(frozen=True, slots=True)
class GpuChoices:
    """The validated `resources.gpu`: the first choice and its ordered fallbacks."""

    requests: tuple[GpuRequest, ...]
    listed: bool  # written as a YAML list (entries are then located at `resources.gpu[i]`)

    @property
    def primary(self) -> GpuRequest:
        return self.requests[0]

    def entries(self) -> list[tuple[tuple[str | int, ...], GpuRequest]]:
        """(YAML path, request) for each entry, fallbacks included."""
        base = ("resources", "gpu")
        return [((*base, i) if self.listed else base, req) for i, req in enumerate(self.requests)]

    def as_written(self) -> str | list[str]:
        texts = [req.text for req in self.requests]
        return texts if self.listed else texts[0]


class GpuError(ValueError):
    """A `resources.gpu` entry that names no Modal GPU (MS301) or an impossible count (MS302)."""

    def __init__(self, code: Code, message: str, hint: str, index: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.hint, self.index = code, message, hint, index


def parse_gpu(text: str) -> GpuRequest:
    """`H200:8` -> GpuRequest("H200", 8); the count defaults to 1. Raises GpuError."""
    written = text.strip()
    type_text, colon, count_text = written.partition(":")
    upper = type_text.upper()
    exact, type_ = upper.endswith("!"), upper.removesuffix("!")
    if type_ not in GPUS or (exact and GPUS[type_].exact != f"{type_}!"):
        raise GpuError(UNKNOWN_GPU_TYPE, _unknown_message(text, type_text), _unknown_hint(type_text, type_, exact))
    if colon and not (count_text.isascii() and count_text.isdigit()):
        raise GpuError(GPU_COUNT_OVER_NODE_LIMIT, f"GPU count `{count_text}` in `{written}` is not a whole number",
                       f"Write `{type_text}:N` with N from 1 to {GPUS[type_].max_per_node}")
    count, limit = int(count_text) if colon else 1, GPUS[type_].max_per_node
    if not 1 <= count <= limit:
        raise GpuError(GPU_COUNT_OVER_NODE_LIMIT, f"`{type_}` count `{count}` is outside 1 to `{limit}` GPUs per container",
                       f"Use 1 to {limit} GPUs per node; set `resources.nodes` for more")
    return GpuRequest(type=type_, count=count, exact=exact, text=text)


def _unknown_message(text: str, type_text: str) -> str:
    if not type_text.strip():
        return f"a blank `resources.gpu` entry names no GPU type; expected one of {listing(GPUS)}"
    return f"`{type_text}` is not a Modal GPU type; expected one of {listing(GPUS)}"


def _unknown_hint(type_text: str, type_: str, exact: bool) -> str:
    if type_ in GPUS:  # a known type with a `!` it does not support
        return f"Use `{type_}`; only `H100!` refuses automatic upgrades"
    if (m := _TYPE_TIMES_COUNT.match(type_)) and m[1].removesuffix("!") in GPUS:
        return f"Write `{m[1]}:{int(m[2])}` (TYPE:COUNT)"
    if not type_text.strip():
        return "Write `TYPE[:COUNT]`, e.g. `H200:8`, or remove `resources.gpu` for a CPU-only run"
    return did_you_mean(type_, set(GPUS)) or f"Use one of {listing(GPUS, 13)}"


def parse_gpus(value: str | list[str]) -> tuple[GpuChoices | None, list[GpuError]]:
    """`resources.gpu` as written (a string or a list of fallbacks) -> its typed value, or the errors."""
    listed = isinstance(value, list)
    texts = value if listed else [value]
    if not texts:
        return None, [GpuError(UNKNOWN_GPU_TYPE, "`resources.gpu` is an empty list",
                               "List at least one GPU, e.g. `[H200:8]`, or remove it for a CPU-only run")]
    requests, errors = [], []
    for i, text in enumerate(texts):
        try:
            requests.append(parse_gpu(text))
        except GpuError as e:
            e.index = i if listed else None
            errors.append(e)
    return (None, errors) if errors else (GpuChoices(tuple(requests), listed), [])
