"""`megaspec compile` and `megaspec plan`: the lower and render stages on the command line.

compile: lint each spec, refuse any with errors, lower it to a Plan and write
`build/<name>/{app.py, plan.json}` atomically. plan: the same up to the Plan, then show the
effective spec with origins, what will be launched, the cost, and optionally a diff of the
generated files against a previous build. Exit codes: 0 ok, 1 spec errors, 2 usage, 3 bug.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import click

EXIT_ERRORS, EXIT_INTERNAL = 1, 3
TARGETS = click.Choice(["local", "modal"])


def origins_of(checked: Any) -> dict[str, str]:
    """Every effective spec key (mappings and leaves) -> where its value came from."""
    from ..plan_view import flatten

    data = checked.spec.model_dump(mode="json", by_alias=True)
    keys: dict[str, None] = {}
    for dotted in flatten(data):
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            keys[".".join(parts[:i])] = None
    return {key: checked.origin(tuple(key.split("."))) for key in keys}


def _lower(checked: Any, target: str | None):
    from ..lower import lower

    raw = Path(checked.path).read_bytes()
    return lower(checked.spec, spec_path=Path(checked.path).as_posix(), spec_sha256=hashlib.sha256(raw).hexdigest(),
                 origins=origins_of(checked), target=target)


def _check(path: str, config: Any) -> Any | None:
    """Lint one spec; print its errors concisely and return None when it has any."""
    from ..diagnostics import has_errors
    from ..lint import check_spec
    from ..report import render_report

    checked = check_spec(path, config=config)
    if checked.spec is not None and not has_errors(checked.diagnostics):
        return checked
    errors = [d for d in checked.diagnostics if d.is_error]
    click.echo(render_report("concise", errors, texts=checked.smap.texts, num_files=1), nl=False, err=True)
    click.echo(f"{path}: not compiled: fix the error(s) above", err=True)
    return None


def _expand(paths: tuple[str, ...]) -> list[str]:
    from ..lint import expand_paths

    files, problems = expand_paths(list(paths))
    if problems:
        raise click.BadParameter("; ".join(d.message for d in problems), param_hint="SPEC")
    return files


def _internal(e: Exception) -> None:
    click.echo(f"internal error[MS901]: {e}\n  = help: this is a bug in megaspec; please report it", err=True)
    raise click.exceptions.Exit(EXIT_INTERNAL)


@click.command("compile")
@click.argument("specs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Where `<name>/app.py` and `<name>/plan.json` go.")
@click.option("--target", type=TARGETS, help="Override `target:`; `local` on a GPU spec is a CPU rehearsal.")
def compile_(specs: tuple[str, ...], out_dir: str, target: str | None) -> None:
    """Lint, lower and render SPEC... (files or directories) into Modal apps."""
    from ..config import load_config
    from ..diagnostics import InternalError
    from ..render import render, write_build

    failed, config = False, load_config()
    for path in _expand(specs):
        checked = _check(path, config)
        if checked is None:
            failed = True
            continue
        try:
            plan = _lower(checked, target)
            where = write_build(render(plan), Path(out_dir), plan.name)
        except InternalError as e:
            _internal(e)
        click.echo(f"{path}: wrote {where.as_posix()}/app.py and plan.json (plan {plan.comparison_hash()[:12]})")
    if failed:
        raise click.exceptions.Exit(EXIT_ERRORS)


@click.command("plan")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--target", type=TARGETS, help="Override `target:`; `local` on a GPU spec is a CPU rehearsal.")
@click.option("--diff", "diff_dir", type=click.Path(file_okay=False, exists=True),
              help="A previous build dir (build/<name>) to diff app.py and plan.json against.")
def plan_(spec: str, as_json: bool, target: str | None, diff_dir: str | None) -> None:
    """Show what SPEC will launch, where each value came from, and what it will cost."""
    from ..config import load_config
    from ..cost import estimate
    from ..diagnostics import InternalError
    from ..plan_view import diff_build, render_json, render_text
    from ..render import render

    files = _expand((spec,))
    checked = _check(files[0], load_config()) if files else None
    if checked is None:
        raise click.exceptions.Exit(EXIT_ERRORS)
    try:
        plan = _lower(checked, target)
        spec_data = checked.spec.model_dump(mode="json", by_alias=True)
        view = render_json if as_json else render_text
        click.echo(view(plan, estimate(plan), spec_data), nl=False)
        if diff_dir is not None:
            click.echo(diff_build(Path(diff_dir), render(plan)), nl=False)
    except InternalError as e:
        _internal(e)


COMMANDS = [compile_, plan_]
