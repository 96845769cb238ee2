"""`megaspec compile` and `megaspec plan`: the lower and render stages on the command line.

compile: lint each spec, refuse any with errors, lower it to a Plan and write
`build/<name>/{app.py, plan.json}` atomically. plan: the same up to the Plan, then show the
effective spec with origins, what will be launched, the cost, and optionally a diff of the
generated files against a previous build. Exit codes: 0 ok, 1 spec errors, 2 usage, 3 bug.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from megaspec.runtime.contract.rundir import PLAN_FILE

from ..codes import EXIT_ERRORS, EXIT_INTERNAL, EXIT_OK, INTERNAL_ERROR, Code, Stage

if TYPE_CHECKING:
    from ..diagnostics import InternalError

DEFAULT_OUT = "build"  # no link is followed below the current folder; below `-o DIR` when one is named
TARGETS = click.Choice(["local", "modal"])


def checked_or_errors(path: str, config: Any) -> tuple[Any | None, str, int]:
    """Lint one spec: `(checked, "", 0)`, or `(None, its errors rendered concisely, the exit status)` when
    it has any (EXIT_INTERNAL when one of them is an internal error, MS9xx, else EXIT_ERRORS)."""
    from ..diagnostics import has_errors
    from ..lint.check import BASE_NOT_A_RUN, check_spec
    from ..lint.report import render_report
    from ..spec.compose import is_base_file

    checked = check_spec(path, config=config)
    if checked.spec is not None and not has_errors(checked.diagnostics):
        return checked, "", EXIT_OK
    errors = [d for d in checked.diagnostics if d.is_error]
    if not errors and is_base_file(path):
        return None, f"{path}: not compiled: it {BASE_NOT_A_RUN}\n", EXIT_ERRORS
    text = render_report("concise", errors, texts=checked.smap.texts, num_files=1)
    status = EXIT_INTERNAL if any(d.stage is Stage.INTERNAL for d in errors) else EXIT_ERRORS
    return None, f"{text}{path}: not compiled: fix the error(s) above\n", status


def build_one(path: str, config: Any, out_dir: str | None, target: str | None) -> tuple[int, str]:
    """Lint, lower, render and write one spec: `(0, the line saying where)`, `(1, its errors)`, or
    `(3, the internal error)` (an MS9xx found by lint, or a bug in lower or render).

    Runs in a worker process for large batches, so it returns text instead of printing.
    """
    from megaspec.runtime.contract.files import WriteRefused

    from ..codegen.build import plan_for
    from ..codegen.render import render, write_build
    from ..diagnostics import InternalError

    checked, errors, status = checked_or_errors(path, config)
    if checked is None:
        return status, errors
    try:
        plan = plan_for(checked, target=target)
        where = write_build(render(plan), Path(out_dir or DEFAULT_OUT), plan.name,
                            links_from=Path(out_dir) if out_dir else Path("."))
    except InternalError as e:
        return build_crashed(path, str(e), e.code)
    except WriteRefused as e:
        return EXIT_ERRORS, f"{path}: not compiled: {e}\n"
    return 0, f"{path}: wrote {where.as_posix()}/app.py and {PLAN_FILE} (plan {plan.modal.tags['megaspec_plan']})\n"


def build_crashed(path: str, reason: str, code: Code = INTERNAL_ERROR) -> tuple[int, str]:
    """The result for a spec whose build raised or whose worker died: the same MS9xx line lint prints."""
    from ..lint.check import crash_diagnostic
    from ..lint.report import render_report

    text = render_report("concise", [crash_diagnostic(path, reason, code)], texts={}, num_files=1)
    return EXIT_INTERNAL, f"{text}{path}: not compiled\n"


def _expand(paths: tuple[str, ...], config: Any) -> list[str]:
    from ..lint.check import expand_paths

    files, problems = expand_paths(list(paths), config)
    if problems:
        raise click.BadParameter("; ".join(d.message for d in problems), param_hint="SPEC")
    return files


def _internal(e: InternalError) -> None:
    click.echo(f"internal error[{e.code.code}]: {e}\n  = help: this is a bug in megaspec; please report it", err=True)
    raise click.exceptions.Exit(EXIT_INTERNAL)


@click.command("compile")
@click.argument("specs", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help=f"Where `<name>/app.py` and `<name>/{PLAN_FILE}` go.  [default: build]")
@click.option("--target", type=TARGETS, help="Override `target:`; `local` on a GPU spec is a CPU rehearsal.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Processes for large batches (default: one per core; 1 = in-process).")
def compile_(specs: tuple[str, ...], out_dir: str, target: str | None, jobs: int | None) -> None:
    """Lint, lower and render SPEC... (files or directories) into Modal apps."""
    from ..codegen import lower, render  # noqa: F401 - imported before any fork, so workers start warm
    from ..lint import check  # noqa: F401
    from ..lint.batch import map_ordered
    from ..lint.config import load_config
    from .paths import require_existing

    require_existing(specs)
    config = load_config()
    worst, build = 0, partial(build_one, config=config, out_dir=out_dir, target=target)
    for code, text in map_ordered(build, _expand(specs, config), jobs, on_crash=build_crashed):
        click.echo(text, nl=False, err=code != 0)
        worst = max(worst, code)
    if worst:
        raise click.exceptions.Exit(worst)  # 3 when any file hit a bug, as `lint` exits


@click.command("plan")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--target", type=TARGETS, help="Override `target:`; `local` on a GPU spec is a CPU rehearsal.")
@click.option("--diff", "diff_dir", type=click.Path(file_okay=False, exists=True),
              help=f"Print only the diff of app.py and {PLAN_FILE} against a previous build dir (build/<name>).")
def plan_(spec: str, as_json: bool, target: str | None, diff_dir: str | None) -> None:
    """Show what SPEC will launch, where each value came from, and what it will cost."""
    from megaspec.runtime.contract.cost import estimate

    from ..codegen.build import plan_for
    from ..codegen.plan_view import diff_build, render_json, render_text
    from ..codegen.render import render
    from ..diagnostics import InternalError
    from ..lint.config import load_config
    from .paths import require_existing

    require_existing([spec])
    checked, errors, status = checked_or_errors(Path(spec).as_posix(), load_config())
    if checked is None:
        click.echo(errors, nl=False, err=True)
        raise click.exceptions.Exit(status)
    try:
        plan = plan_for(checked, target=target)
        if diff_dir is not None:  # the diff alone: what a spec change would change, not 90 lines of plan first
            click.echo(diff_build(Path(diff_dir), render(plan)), nl=False)
            return
        spec_data = checked.spec.model_dump(mode="json", by_alias=True)
        view = render_json if as_json else render_text
        click.echo(view(plan, estimate(plan), spec_data), nl=False)
    except InternalError as e:
        _internal(e)


COMMANDS = [compile_, plan_]
