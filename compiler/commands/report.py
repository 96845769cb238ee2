"""`megaspec report RUNS_OR_SWEEP [-o DIR]`: a sweep's (or a runs directory's) results as tables and plots.

Prints the table (one per comparison class, the best run marked), then writes `summary.csv`,
`summary.md` and, with matplotlib (`megaspec[plots]`), PNG plots into DIR (default:
RUNS_OR_SWEEP/report/). Without matplotlib the tables are still written and the message says how
to get the plots. Exit codes: 0 written, 1 nothing to report or a path that holds no runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from megaspec.runtime.contract.rundir import MANIFEST_FILE

from ..runs.manifest import BackendError
from ..safe_text import escaped, read_back
from .run_output import fail


@click.command("report")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where summary.csv, summary.md and the plots go (default: PATH/report/).")
@click.option("--x", "x_axis", type=click.Choice(["step", "tokens"]), default="step", show_default=True,
              help="The loss plot's x axis: optimizer steps, or tokens seen (steps x global batch x sequence length).")
@read_back
def report(path: Path, out_dir: Path | None, x_axis: str) -> None:
    """Table and plots of the runs in PATH: a sweep directory (runs/<sweep-id>) or a runs directory."""
    from megaspec.runtime.contract.files import WriteRefused, refuse_links, write_text_atomic

    from ..runs.records import run_dirs
    from ..runs.report_plots import plots_available, write_plots
    from ..runs.report_table import build_report, format_csv, format_markdown, format_text

    try:
        if not run_dirs(path):
            fail(f"no runs under `{path}` (no */{MANIFEST_FILE})", "Pass a sweep directory (runs/<sweep-id>) or a "
                                                                  "runs directory, as printed by `megaspec apply`")
        result = build_report(path)
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    base, out_dir = (out_dir, out_dir) if out_dir else (path, path / "report")
    try:
        refuse_links(base, out_dir)  # a `report` link left in a sweep folder must not take the files elsewhere
    except WriteRefused as e:
        fail(f"{e}; nothing written")
    click.echo(format_text(result), nl=False)
    written = [write_text_atomic(out_dir / "summary.csv", format_csv(result)),
               write_text_atomic(out_dir / "summary.md", escaped(format_markdown(result)))]
    if plots_available():
        written += write_plots(result, out_dir, x=x_axis)
        plots_note = ""
    else:
        plots_note = "\nplots: skipped, matplotlib is not installed; `pip install 'megaspec[plots]'` adds them"
    click.echo(f"wrote {', '.join(p.name for p in written)} to {out_dir}/" + plots_note)


COMMANDS = [report]
