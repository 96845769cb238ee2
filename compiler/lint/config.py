"""Stage 5 of the lint pipeline: project configuration from `[tool.megaspec]` in pyproject.toml.

    [tool.megaspec]
    ignore = ["MS303", "MS4"]            # codes or code prefixes never reported
    warnings-as-errors = true            # or ["MS2", ...]: which warnings fail the run
    exclude = ["tests/fixtures/*"]       # globs (from this file's folder) a directory walk skips

The nearest pyproject.toml walking up from the current directory wins (ruff's discovery). A bad
config is a diagnostic located in that file, never a traceback.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..codes import INVALID_CONFIG
from ..diagnostics import Diagnostic, Severity, Span
from .credentials import mask_free_text

_CODE_PREFIX = re.compile(r"^MS\d{0,3}$")
KNOWN_KEYS = ("ignore", "warnings-as-errors", "exclude")


@dataclass(frozen=True)
class Config:
    ignore: tuple[str, ...] = ()
    warnings_as_errors: bool | tuple[str, ...] = False
    exclude: tuple[str, ...] = ()  # fnmatch globs, relative to `root`, for directory walks only
    path: str | None = None  # the pyproject.toml it came from
    root: str | None = field(default=None, compare=False)  # its folder, absolute
    diagnostics: tuple[Diagnostic, ...] = field(default=(), compare=False)

    def excludes(self, path: Path) -> bool:
        """Whether a directory walk skips `path`: it, or a folder above it, matches an `exclude` glob."""
        if not self.exclude or self.root is None:
            return False
        try:
            relative = PurePosixPath(path.resolve().relative_to(self.root).as_posix())
        except ValueError:  # outside the project
            return False
        candidates = [relative.as_posix(), *(p.as_posix() for p in relative.parents if p.parts)]
        return any(fnmatch.fnmatchcase(c, pattern.rstrip("/")) for c in candidates for pattern in self.exclude)

    def merged(self, *, ignore: tuple[str, ...] = (), warnings_as_errors: bool = False) -> Config:
        """This config plus command-line flags (flags add to the file's settings)."""
        wae = True if warnings_as_errors else self.warnings_as_errors
        return replace(self, ignore=(*self.ignore, *ignore), warnings_as_errors=wae)

    def apply(self, diagnostics: list[Diagnostic]) -> list[Diagnostic]:
        """Drop ignored codes; promote warnings to errors where configured."""
        out = []
        for d in diagnostics:
            if any(d.code.startswith(p) for p in self.ignore):
                continue
            if d.severity is Severity.WARNING and self._promotes(d.code):
                d = d.with_severity(Severity.ERROR)
            out.append(d)
        return out

    def _promotes(self, code: str) -> bool:
        if isinstance(self.warnings_as_errors, bool):
            return self.warnings_as_errors
        return any(code.startswith(p) for p in self.warnings_as_errors)


def find_pyproject(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _problem(path: str, line: int, message: str, hint: str, severity: Severity = Severity.ERROR) -> Diagnostic:
    """An MS012 whose message quotes pyproject values: credential-looking ones masked (PR logs are public)."""
    message = mask_free_text(message)
    span = Span(path=path, line=line, col=1, end_line=line, end_col=2)
    return Diagnostic(code=INVALID_CONFIG.code, rule=INVALID_CONFIG.name, severity=severity, message=message, span=span, hint=hint)


def _line_of(text: str, key: str) -> int:
    """The line that assigns `key` (or opens a table named `key`), for the diagnostic's span."""
    pattern = re.compile(rf"^\s*(?:\[{re.escape(key)}\b|[\"']?{re.escape(key)}[\"']?\s*=)")
    for i, line in enumerate(text.splitlines(), start=1):
        if pattern.match(line):
            return i
    return 1


def load_config(start: Path | None = None) -> Config:
    """Read `[tool.megaspec]` from the nearest pyproject.toml; an absent file or table is the default."""
    found = find_pyproject(start)
    if found is None:
        return Config()
    shown = _display(found)
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: no tomllib in the standard library
        return Config(path=shown, diagnostics=(_problem(
            shown, 1, "`[tool.megaspec]` is skipped: reading pyproject.toml needs Python 3.11 or newer",
            "Use Python 3.11+, or pass `--ignore` / `--warnings-as-errors` on the command line",
            Severity.WARNING),))
    from ..spec.source import SpecFileError, read_spec_bytes

    try:  # a regular file of at most 1 MiB: a FIFO or a device named pyproject.toml must not hang lint
        text = read_spec_bytes(found).decode("utf-8", errors="replace")
    except (OSError, SpecFileError) as e:
        return Config(path=shown, diagnostics=(_problem(shown, 1, f"pyproject.toml cannot be read: {e}",
                                                        "Make it a regular text file"),))
    try:
        table = tomllib.loads(text).get("tool", {}).get("megaspec", {})
    except tomllib.TOMLDecodeError as e:
        return Config(path=shown, diagnostics=(_problem(shown, getattr(e, "lineno", 1) or 1,
                                                        f"pyproject.toml is not valid TOML: {e}",
                                                        "Fix the TOML syntax"),))
    return _parse_table(table, shown, text, str(found.parent))


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _codes(value: Any, key: str, shown: str, text: str, problems: list[Diagnostic]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(_problem(shown, _line_of(text, key), f"`{key}` must be a list of codes",
                                 f'Write it like `{key} = ["MS303", "MS4"]`'))
        return ()
    bad = [v for v in value if not _CODE_PREFIX.match(v.strip().upper().rstrip("X"))]
    for v in bad:
        problems.append(_problem(shown, _line_of(text, key), f"`{v}` in `{key}` is not a megaspec code",
                                 "Use codes like `MS303` or prefixes like `MS3`"))
    return tuple(v.strip().upper().rstrip("X") for v in value if v not in bad)


def _parse_table(table: Any, shown: str, text: str, root: str | None = None) -> Config:
    problems: list[Diagnostic] = []
    if not isinstance(table, dict):
        problems.append(_problem(shown, _line_of(text, "tool.megaspec"), "`tool.megaspec` must be a table",
                                 "Write it as a `[tool.megaspec]` section"))
        return Config(path=shown, diagnostics=tuple(problems))
    for key in table:
        if key not in KNOWN_KEYS:
            problems.append(_problem(shown, _line_of(text, key), f"unknown key `{key}` in `[tool.megaspec]`",
                                     "Use " + " or ".join(f"`{k}`" for k in KNOWN_KEYS)))
    ignore = _codes(table.get("ignore", []), "ignore", shown, text, problems)
    raw_wae = table.get("warnings-as-errors", False)
    wae: bool | tuple[str, ...] = raw_wae if isinstance(raw_wae, bool) else _codes(
        raw_wae, "warnings-as-errors", shown, text, problems)
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(v, str) and v.strip() for v in exclude):
        problems.append(_problem(shown, _line_of(text, "exclude"), "`exclude` must be a list of path globs",
                                 'Write it like `exclude = ["tests/fixtures/*"]`'))
        exclude = []
    return Config(ignore=ignore, warnings_as_errors=wae, exclude=tuple(exclude), path=shown, root=root,
                  diagnostics=tuple(problems))
