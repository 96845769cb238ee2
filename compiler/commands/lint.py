"""CLI verbs of the lint front end: `lint`, `schema`, `explain`, `rules`.

The pipeline modules (and even difflib, json, tempfile) are imported inside each command, so
`megaspec --help` and `megaspec lint` load only what they use: start-up is most of linting one spec.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..codes import EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, Stage
from ..diagnostics import Severity
from .paths import write_output

FORMATS = ("human", "concise", "json", "github", "sarif")


def _default_format() -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    return "human" if sys.stdout.isatty() else "concise"


def _codes(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip().upper().rstrip("X") for c in (text or "").split(",") if c.strip())


def _exit_code(diagnostics: list) -> int:
    if any(d.stage is Stage.INTERNAL for d in diagnostics):
        return EXIT_INTERNAL
    return EXIT_ERRORS if any(d.is_error for d in diagnostics) else EXIT_OK


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: human on a terminal, concise otherwise, github in GitHub Actions).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to FILE instead of stdout.")
@click.option("--warnings-as-errors", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--ignore", "ignore", metavar="CODES", default=None,
              help="Comma-separated codes or prefixes to ignore, e.g. MS303,MS4.")
@click.option("--no-config", is_flag=True, help="Ignore [tool.megaspec] in pyproject.toml.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes for large batches (default: one per core; 1 = in-process).")
@click.option("--fix", is_flag=True,
              help="Apply the safe fixes in place (H100!, quoting, trailing `/`, unused suppressions), then lint again.")
def lint(paths: tuple[Path, ...], fmt: str | None, output: Path | None, warnings_as_errors: bool,
         ignore: str | None, no_config: bool, jobs: int | None, fix: bool) -> None:
    """Check spec files. A directory yields its `*.yaml`/`*.yml` files that have a `megaspec:` key,
    or a near miss of one (a key close to `megaspec`, or two keys only a spec has), skipping hidden
    and installed-package directories; `_*.yaml` files are bases, linted through
    the specs that extend them. A file named here is always linted (a base: its keys and types).

    Exit codes: 0 clean or warnings only, 1 errors, 2 usage error, 3 internal error.
    """
    from ..lint.check import check_paths
    from ..lint.config import Config, load_config
    from ..lint.report import render_report
    from .paths import require_existing

    require_existing(paths, "PATHS")
    base = Config() if no_config else load_config()
    config = base.merged(ignore=_codes(ignore), warnings_as_errors=warnings_as_errors)
    result = check_paths(list(paths), config, jobs)
    if fix:
        result = _fix_until_stable(list(paths), config, jobs, result)
    fmt = fmt or _default_format()
    color = output is None and fmt == "human" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = render_report(fmt, result.diagnostics, texts=result.texts, num_files=result.num_files, color=color)
    if fmt == "concise" and not any(d.severity is not Severity.INFO for d in result.diagnostics):
        from ..lint.report.human import format_summary

        text += format_summary(result.diagnostics, result.num_files)  # silence could mean nothing was read
    if output is not None:
        write_output(output, text)
    else:
        click.echo(text, nl=False)
    raise click.exceptions.Exit(_exit_code(result.diagnostics))


MAX_FIX_ROUNDS = 5  # a schema fix can let the rules run and find the next fixable thing


def _fix_until_stable(paths: list[Path], config, jobs: int | None, result):
    """Apply fixes and lint again until none applies; say what changed on stderr."""
    from ..lint.check import check_paths
    from ..lint.fixes import apply_fixes

    total: dict[str, int] = {}
    for _ in range(MAX_FIX_ROUNDS):
        applied = apply_fixes(result.diagnostics)
        if not applied:
            break
        for path, count in applied.items():
            total[path] = total.get(path, 0) + count
        result = check_paths(paths, config, jobs)
    if total:
        listed = f": {', '.join(sorted(total))}" if len(total) <= 5 else ""
        click.echo(f"fixed {sum(total.values())} finding(s) in {len(total)} file(s){listed}", err=True)
    return result


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the schema to FILE (atomically) instead of stdout, e.g. `-o schema.json`.")
@click.option("--base", is_flag=True,
              help="The schema of base files (`_*.yaml`): the same keys, no `name` required (schema.base.json).")
def schema(output: Path | None, base: bool) -> None:
    """Print the JSON Schema of the spec format (for editors and check-jsonschema)."""
    from ..spec.json_schema import schema_text

    text = schema_text(base=base)
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
        return
    write_output(output, text)
    click.echo(f"wrote {output}", err=True)


def _registry() -> dict:
    from ..lint import check as _lint  # noqa: F401 - registers lint rules and stage codes
    from ..lint.rules.registry import REGISTRY

    return REGISTRY


def _closest_code(text: str, codes: list[str]) -> str | None:
    """A code one character away (`MS1O1` -> `MS101`), else difflib's best guess."""
    from ..diagnostics import closest

    fixed = text.translate(str.maketrans("OIL", "011"))
    if fixed in codes:
        return fixed
    near = [c for c in codes if len(c) == len(fixed) and sum(a != b for a, b in zip(c, fixed, strict=True)) == 1]
    return near[0] if near else closest(fixed, codes)


@click.command()
@click.argument("code")
def explain(code: str) -> None:
    """Print the documentation of a diagnostic code, e.g. `megaspec explain MS101`."""
    from ..diagnostics import closest

    registry = _registry()
    key = code.strip().upper()
    by_name = {r.name: c for c, r in registry.items()}
    key = by_name.get(code.strip(), key)
    if key not in registry:
        close = _closest_code(key, sorted(registry)) or closest(code, by_name)
        hint = f" Did you mean `{by_name.get(close, close)}`?" if close else ""
        raise click.BadParameter(f"`{code}` is not a megaspec code.{hint} See `megaspec rules`.",
                                 param_hint="CODE")
    r = registry[key]
    click.echo(f"{r.code} {r.name} ({r.severity})\n\n{r.doc}\n")


@click.command(name="rules")
def rules_cmd() -> None:
    """List every diagnostic code: code, name, default severity, summary."""
    registry = _registry()
    width = max(len(r.name) for r in registry.values())
    for code in sorted(registry):
        r = registry[code]
        click.echo(f"{r.code}  {r.name:<{width}}  {str(r.severity):<7}  {r.summary}")


COMMANDS = [lint, schema, explain, rules_cmd]
