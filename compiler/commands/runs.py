"""`megaspec collect` and `megaspec cancel`: advance or stop a detached Modal run."""

from __future__ import annotations

from pathlib import Path

import click

from ..runs.manifest import BackendError
from .run_output import EXIT_FAILED, EXIT_OK, fail, print_outcome, require_manifest


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def collect(run_dir: str) -> None:
    """Poll a detached Modal run once and advance its manifest; safe to repeat."""
    from ..runs.backends import modal as modal_backend

    path = Path(run_dir)
    require_manifest(path)
    try:
        manifest = modal_backend.collect(path)
    except BackendError as e:
        fail(str(e), e.hint)
    if manifest.is_terminal:
        print_outcome(path, manifest)
        raise click.exceptions.Exit(EXIT_OK if manifest.state == "ok" else EXIT_FAILED)
    click.echo(f"state: {manifest.state} (polled {manifest.last_polled_at}); run `megaspec collect {path}` again later")
    for note in manifest.notes:
        click.echo(f"note: {note}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def cancel(run_dir: str) -> None:
    """Cancel a detached Modal run: stop the call, terminate its containers, end the manifest `interrupted`."""
    from ..runs.backends import modal as modal_backend

    path = Path(run_dir)
    before = require_manifest(path)
    try:
        manifest = modal_backend.cancel(path)
    except BackendError as e:
        fail(str(e), e.hint)
    if before.is_terminal:
        click.echo(f"{manifest.run_id} already ended `{manifest.state}`; nothing to cancel")
    else:
        click.echo(f"cancelled {manifest.run_id} ({manifest.modal.function_call_id}); state: {manifest.state}")


COMMANDS = [collect, cancel]
