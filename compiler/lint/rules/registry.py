"""The lint-rule registry and the context a rule reports through.

A rule is a small function decorated with `@rule(code, name, severity)`. Its docstring, in fixed
sections (what it checks, Why, Example, Use instead), is what `megaspec explain` prints and what
SARIF carries. `ctx.report(path, message, ...)` fills in the code, name, severity and span.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...diagnostics import Diagnostic, Fix, Related, Severity, Span, YamlPath
from ...spec.model import Spec
from ...spec.source_map import SourceMap


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    func: Callable[[RuleContext], None] | None  # None for stage diagnostics (MS0xx, MS1xx, MS9xx)
    doc: str

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name


@dataclass
class RuleContext:
    spec: Spec
    smap: SourceMap
    data: dict[str, Any]  # the merged plain data the spec was validated from (for scans of raw text)
    credentials: list[tuple[YamlPath, str, str]] = field(default_factory=list)  # found once per spec
    code_dir: Path | None = None  # the folder `model.code` is relative to (compose decides it); None: no file
    rule: Rule | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def set(self, path: YamlPath) -> bool:
        """Whether the user wrote `path` (in this file or a base), as opposed to a default."""
        return self.smap.node(path) is not None

    def related(self, path: YamlPath, message: str) -> Related | None:
        span = self.smap.value_span(path)
        return Related(span=span, message=message) if span else None

    def report(self, path: YamlPath, message: str, *, hint: str | None = None, key: bool = False,
               related: list[Related | None] | tuple = (), severity: Severity | None = None,
               fix: tuple[str, Callable[[str], str | None]] | None = None, fix_at: YamlPath | None = None) -> None:
        """Report at `path` (the value's span, or the key's when `key=True`; nearest written ancestor).

        `fix`: (title, a function from the source text at the span to its replacement, or None); it
        replaces the value at `fix_at` when given (which must be written), else at the reported span.
        """
        assert self.rule is not None
        span = self.smap.key_span(path) if key else self.smap.value_span(path)
        fix_span = span if fix_at is None else (self.smap.value_span(fix_at) if self.set(fix_at) else None)
        self.diagnostics.append(Diagnostic(
            code=self.rule.code, rule=self.rule.name, severity=severity or self.rule.severity,
            message=message, span=span, yaml_path=tuple(path), hint=hint,
            related=tuple(r for r in related if r is not None), fix=self._fix(fix_span, fix)))

    def _fix(self, span: Span | None, fix: tuple[str, Callable[[str], str | None]] | None) -> Fix | None:
        if span is None or fix is None or (original := self.smap.text_at(span)) is None:
            return None
        title, transform = fix
        replacement = transform(original)
        if replacement is None or replacement == original:
            return None
        return Fix(title=title, span=span, original=original, replacement=replacement)


REGISTRY: dict[str, Rule] = {}


def rule(code: str, name: str, severity: Severity = Severity.ERROR):
    """Register a lint rule function under `code` (MS2xx-MS6xx)."""

    def wrap(func: Callable[[RuleContext], None]) -> Callable[[RuleContext], None]:
        _add(Rule(code, name, severity, func, inspect.cleandoc(func.__doc__ or "")))
        return func

    return wrap


def stage_rule(code: str, name: str, doc: str, severity: Severity = Severity.ERROR) -> None:
    """Register a diagnostic that a pipeline stage emits (parse, schema, suppression, internal)."""
    _add(Rule(code, name, severity, None, inspect.cleandoc(doc)))


def _add(r: Rule) -> None:
    if r.code in REGISTRY and REGISTRY[r.code].name != r.name:
        raise ValueError(f"rule code {r.code} registered twice ({REGISTRY[r.code].name}, {r.name})")
    REGISTRY[r.code] = r


def run_rules(ctx_factory: Callable[[], RuleContext]) -> list[Diagnostic]:
    """Run every registered lint rule; each gets a fresh context and reports into one list."""
    out: list[Diagnostic] = []
    for r in sorted(REGISTRY.values(), key=lambda r: r.code):
        if r.func is None:
            continue
        ctx = ctx_factory()
        ctx.rule = r
        r.func(ctx)
        out.extend(ctx.diagnostics)
    return out
