"""What the run verbs share: a user-facing failure, opening a run directory, the end-of-run summary."""

from __future__ import annotations

from pathlib import Path

import click

from megaspec.runtime.contract.rundir import MANIFEST_FILE

from ..codes import EXIT_ERRORS, EXIT_OK
from ..runs.interrupts import signalled  # noqa: F401 - the commands take it from here
from ..runs.manifest import Manifest, read_manifest

EXIT_FAILED = EXIT_ERRORS  # a run that failed, or was refused before it started
# The run failed and left no receipt: its own output is all there is (by backend).
NO_RECEIPT_REMOTE_TRIAGE = {
    "modal": "the function failed on Modal before returning a receipt: read its output with `megaspec logs "
             "RUN` and the call graph in the manifest",
    "local": "the run's processes ended without a receipt: read `megaspec logs RUN` and the ranks' status "
             "files (ranks/rank-N.json)",
}


def fail(message: str, hint: str | None = None, code: int = EXIT_FAILED):
    """Print a user-facing problem the way diagnostics look (`error: ...` / `= help: ...`) and exit."""
    click.echo(f"error: {message}" + (f"\n  = help: {hint}" if hint else ""), err=True)
    raise click.exceptions.Exit(code)


def require_manifest(run_dir: Path) -> Manifest:
    if not (run_dir / MANIFEST_FILE).is_file():
        fail(f"`{run_dir}` is not a run directory (no {MANIFEST_FILE})", "Pass `runs/<run-id>` as printed by apply")
    try:
        return read_manifest(run_dir)
    except (ValueError, OSError) as e:
        fail(f"cannot read the manifest: {e}", "It was written by another megaspec version, or edited by hand")


def exit_code(manifest: Manifest) -> int:
    """The exit code a run's state implies, for every run verb: 0 ok or not finished yet, 1 the run did
    not succeed (error, interrupted or cancelled, or its loss diverged). A command that a signal stopped
    exits `signalled`."""
    return EXIT_FAILED if manifest.state in ("error", "interrupted", "diverged") else EXIT_OK


def was_signalled(code: int) -> bool:
    return code > 128


def print_outcome(run_dir: Path, manifest: Manifest) -> None:
    """The end-of-run summary from the receipt, else the state with the manifest's typed error and notes."""
    from megaspec.runtime.contract.receipt import read_receipt

    from ..runs.receipt_view import CODE_TRIAGE, MANIFEST_TRIAGE, format_summary

    if manifest.receipt:
        path = run_dir / manifest.receipt
        click.echo(format_summary(read_receipt(path), str(path)), nl=False)
    else:
        click.echo(f"status: {manifest.state}")
    if manifest.error and not manifest.receipt:
        e = manifest.error
        look = MANIFEST_TRIAGE[e.stage] if e.stage != "remote" else NO_RECEIPT_REMOTE_TRIAGE[manifest.backend]
        look = CODE_TRIAGE.get(e.message.partition(":")[0], look)  # a coded refusal (MS807) knows its fix
        click.echo(f"error[{e.stage}]: {e.message}\n  = look first at: {look}")
    for note in manifest.notes:
        click.echo(f"note: {note}")
    if not manifest.receipt:
        click.echo(f"manifest: {run_dir / MANIFEST_FILE}")
