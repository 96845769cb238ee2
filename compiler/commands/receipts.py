"""`megaspec receipts show`, `list` and `compare`: read what runs proved, and set runs side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click

from megaspec.runtime.contract.rundir import MANIFEST_FILE, RECEIPT_FILE

from ..runs.manifest import read_manifest
from ..safe_text import read_back
from .run_output import fail, require_manifest


@click.group()
def receipts() -> None:
    """Read run receipts: `show` one, `list` a runs directory, `compare` several."""


@receipts.command("show")
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the receipt JSON as stored.")
@read_back
def show(path: str, as_json: bool) -> None:
    """Print the receipt of PATH (a run directory or a receipt.json) for people."""
    from megaspec.runtime.contract.files import read_text_capped
    from megaspec.runtime.contract.receipt import read_receipt

    from ..runs.receipt_view import format_receipt

    receipt_path = Path(path) / RECEIPT_FILE if Path(path).is_dir() else Path(path)
    if not receipt_path.is_file():
        state = require_manifest(Path(path)).state if Path(path).is_dir() else "unknown"
        fail(f"`{path}` has no receipt yet (state: {state})", f"Run `megaspec collect {path}` for a Modal run")
    try:
        receipt = read_receipt(receipt_path)
    except ValueError as e:
        fail(f"`{receipt_path}` is not a valid receipt: {str(e).splitlines()[0]}")
    click.echo(read_text_capped(receipt_path, "receipt") if as_json else format_receipt(receipt), nl=False)


@receipts.command("list")
@click.argument("runs_dir", default="runs", type=click.Path(file_okay=False))
@read_back
def list_runs(runs_dir: str) -> None:
    """One line per run under RUNS_DIR, oldest launch first (the manifest's first transition)."""
    from megaspec.runtime.contract.receipt import read_receipt

    from ..runs.receipt_view import RUN_LINE_HEADER, format_run_line
    from ..runs.refresh import run_dirs

    manifest_paths = [d / MANIFEST_FILE for d in run_dirs(Path(runs_dir))]
    if not manifest_paths:
        click.echo(f"no runs under `{runs_dir}`", err=True)
        return
    click.echo(RUN_LINE_HEADER)
    for manifest_path in manifest_paths:
        try:
            manifest = read_manifest(manifest_path)
            receipt_path = manifest_path.parent / RECEIPT_FILE
            receipt = read_receipt(receipt_path) if receipt_path.is_file() else None
        except (ValueError, OSError, json.JSONDecodeError) as e:
            click.echo(f"{manifest_path.parent.name:<44} unreadable: {str(e).splitlines()[0]}")
            continue
        click.echo(format_run_line(manifest, receipt))





@receipts.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--force", is_flag=True, help="Show runs of different comparison classes anyway, marked.")
@click.option("--long/--wide", "long", default=None,
              help="One row per run (the default for more than 4 runs), or one column per run.")
def compare(runs: tuple[str, ...], force: bool, long: bool | None) -> None:
    """One table of how RUNS (run directories or receipts; a sweep or runs directory for all its runs)
    differ: settings, metrics, provenance, each run headed by its run id with its name beneath. Runs of
    different comparison classes are refused; so is a folder that holds no run."""
    from ..runs.compare_view import format_compare, refusal
    from ..runs.manifest import BackendError
    from ..runs.records import load_run, run_dirs

    try:
        paths = [p for run in runs for p in _runs_in(run, run_dirs)]
        records = [load_run(p) for p in paths]
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    if len(records) < 2:
        fail(f"compare needs two runs or more; got {len(records)}", "Pass two run directories (runs/<run-id>)")
    refused = refusal(records)
    if refused and not force:
        fail(*refused)
    click.echo(format_compare(records, forced=force, long=long), nl=False)


def _runs_in(run: str, run_dirs) -> list[Path]:
    """A receipt file, a run directory, or the runs of a runs or sweep directory; a folder that holds no
    run is refused, never dropped."""
    if not Path(run).is_dir():
        return [Path(run)]
    found = run_dirs(run)
    if not found:
        fail(f"`{run}` holds no run: no {MANIFEST_FILE} in it or in the folders just under it",
             "Pass run directories (runs/<run-id>), a sweep directory or a runs directory")
    return found


COMMANDS = [receipts]
