"""The one diagnostic type every compiler stage returns, and the two exception types.

Stages never raise on user mistakes: they return `Diagnostic`s, and gates between stages decide
what runs next. `SpecError` carries diagnostics for callers that want to raise; `InternalError`
is a bug in megaspec (reported as MS9xx, exit code 3).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .codes import INTERNAL_ERROR, Code, Stage, stage_of

YamlPath = tuple[str | int, ...]


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A 1-based, end-exclusive region of one file (the SARIF / ruff convention)."""

    path: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Related:
    span: Span
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Fix:
    """A safe, mechanical repair: put `replacement` where `original` is (`megaspec lint --fix`)."""

    title: str  # imperative, for the report: "Write `H100!`"
    span: Span
    original: str  # the source text at `span` when the finding was made; a changed file is left alone
    replacement: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    code: str  # "MS201"
    rule: str  # kebab-case, names the problem: "batch-not-divisible"
    severity: Severity
    message: str  # one line, spec vocabulary, actual value in backticks
    span: Span | None  # None only for problems with no file (flags, config)
    yaml_path: YamlPath = ()
    hint: str | None = None  # imperative: "Set ...", "Use one of ...", "Did you mean `gpu`?"
    related: tuple[Related, ...] = ()
    origin: str | None = None  # e.g. the pydantic error type "greater_than"
    fix: Fix | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def stage(self) -> Stage:
        return stage_of(self.code)

    def with_severity(self, severity: Severity) -> Diagnostic:
        return replace(self, severity=severity)

    def sort_key(self) -> tuple:
        s = self.span
        where = (s.path, s.line, s.col) if s else ("", 0, 0)
        return (*where, self.code, self.message)


def sort_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Deterministic order, exact duplicates dropped (actionlint `compareErrors` + `CompactFunc`)."""
    seen: set[Diagnostic] = set()
    out = []
    for d in sorted(diagnostics, key=Diagnostic.sort_key):
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


@dataclass
class SpecError(Exception):
    """Raised by callers that cannot continue past user mistakes (compile, apply)."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{d.span or '<no file>'}: {d.code} {d.message}" for d in self.diagnostics)


class InternalError(Exception):
    """A bug in megaspec, never a user mistake. Reported as its MS9xx `code` with exit code 3."""

    def __init__(self, message: str, code: Code = INTERNAL_ERROR):
        super().__init__(message)
        self.code = code


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word`, if any is close (difflib is loaded only when asked)."""
    import difflib

    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """`Did you mean `gpu`?` for the closest choice, or None."""
    close = closest(word, choices)
    return f"Did you mean `{close}`?" if close else None


def listing(choices: Iterable[str], limit: int = 8) -> str:
    """`a`, `b`, `c`, … (sorted, at most `limit`)."""
    items = sorted(choices)
    text = ", ".join(f"`{c}`" for c in items[:limit])
    return text + (", …" if len(items) > limit else "")
