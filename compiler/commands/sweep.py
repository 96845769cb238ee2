"""`megaspec sweep TEMPLATE`: expand a sweep template into one lint-checked spec file per run.

The template must lint clean (MS5xx check its matrix paths, name template and run names). Each
expanded run is then linted on its own, because a combination can break a rule the template did
not (a batch that no longer divides by the world size). Exit codes: 0 ok, 1 errors, 2 usage.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..codes import EXIT_ERRORS
from .compile import checked_or_errors


def _stale(out_dir: Path, keep: set[Path], template_path: str) -> list[Path]:
    """Run files an earlier expansion of this template wrote that it no longer yields: regular files
    whose header names this template and whose `name:` is their file name. Anything else stays."""
    from ..spec.expand import EDIT_LINE, header_line
    from ..spec.source import SpecFileError, read_spec_bytes

    if not out_dir.is_dir():
        return []
    found = []
    for path in sorted(out_dir.glob("*.yaml")):
        if path in keep or path.is_symlink():
            continue
        try:
            lines = read_spec_bytes(path).decode("utf-8").split("\n")
        except (OSError, SpecFileError, UnicodeDecodeError):
            continue
        if (len(lines) > 2 and lines[0].startswith(header_line(template_path)) and lines[1] == EDIT_LINE
                and f"name: {path.stem}" in lines):
            found.append(path)
    return found


def _print_dry_run(checked, runs, template: str) -> None:
    """The runs as the `apply` preview shows them (name, swept values, GPU, estimated time and cost), and the
    totals; first each run is linted from its text in memory as `apply` lints it (MS202 for a run whose batch
    does not split, exit 1), never lowered unchecked."""
    from ..codegen.sweep_estimate import estimate_runs, preview_lines
    from ..spec.expand import run_files
    from .apply_sweep import lint_all

    _, errors = lint_all([Path(template).parent / f"{r.name}.yaml" for r in runs], None, run_files(runs, template))
    if errors:
        click.echo(errors, nl=False, err=True)
        click.echo(f"{errors.count(': error[')} error(s) in the sweep's runs; fix the template", err=True)
        raise click.exceptions.Exit(EXIT_ERRORS)
    lines, _, _ = preview_lines([(e.run.name, e.run.values, e.plan, e.estimate) for e in estimate_runs(checked, runs)])
    click.echo("\n".join(lines))
    click.echo(f"{len(runs)} run(s); nothing written (--dry-run)")


@click.command("sweep")
@click.argument("template", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where the run specs go (default: sweeps/<template name>/).")
@click.option("--dry-run", is_flag=True, help="List the runs without writing anything.")
def sweep(template: str, out_dir: Path | None, dry_run: bool) -> None:
    """Expand the `sweep:` block of TEMPLATE into one spec file per run, and lint each run."""
    from ..lint.check import check_spec
    from ..lint.config import load_config
    from ..lint.report import render_report
    from ..spec.expand import expand, write_runs
    from .paths import require_existing

    require_existing([template], "TEMPLATE")
    config = load_config()
    path = Path(template).as_posix()
    checked, errors, status = checked_or_errors(path, config)
    if checked is None:
        click.echo(errors, nl=False, err=True)
        raise click.exceptions.Exit(status)
    if checked.spec.sweep is None:
        raise click.BadParameter(f"`{path}` has no `sweep:` block; it is a single run", param_hint="TEMPLATE")
    runs = expand(checked.composed.written, checked.spec.name, checked.spec.sweep,
                  checked.composed.code_dir)
    if dry_run:
        _print_dry_run(checked, runs, path)
        return
    from megaspec.runtime.contract.files import WriteRefused

    links_from = out_dir or Path(".")
    out_dir = out_dir or Path("sweeps") / checked.spec.name
    try:
        written = write_runs(runs, out_dir, path, links_from=links_from)
    except WriteRefused as e:
        click.echo(f"error: {e}; nothing written", err=True)
        raise click.exceptions.Exit(EXIT_ERRORS) from None
    for old in _stale(out_dir, set(written), path):
        old.unlink()
        click.echo(f"removed {old.as_posix()}: no longer a run of this sweep")
    failed = 0
    for run_path in written:
        result = check_spec(run_path, config=config)
        problems = [d for d in result.diagnostics if d.is_error]
        if problems:
            failed += 1
            click.echo(render_report("concise", problems, texts=result.smap.texts, num_files=1), nl=False, err=True)
    click.echo(f"wrote {len(runs)} run spec(s) to {out_dir.as_posix()}/"
               + (f"; {failed} have errors (above): fix the template and expand again" if failed else ""))
    if failed:
        raise click.exceptions.Exit(EXIT_ERRORS)


COMMANDS = [sweep]
