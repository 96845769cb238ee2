"""`megaspec doctor SPEC...`: check what launching SPEC on Modal needs, before any image is built."""

from __future__ import annotations

import click

from ..codes import EXIT_ERRORS, EXIT_OK
from .run_output import fail


@click.command()
@click.argument("specs", nargs=-1, required=True, type=click.Path(dir_okay=False))
def doctor(specs: tuple[str, ...]) -> None:
    """Check what launching SPEC on Modal needs: the client's version, the credentials, the environment,
    and that every Secret and Volume it names exists. Nothing is built or launched.

    Exit codes: 0 every check passed, 1 one failed (each says how to fix it), 2 usage.
    """
    from ..codegen.build import plan_for
    from ..runs.backends.modal_doctor import check_modal
    from .apply import _checked_spec
    from .paths import require_existing

    require_existing(list(specs))
    plans = [plan_for(_checked_spec(spec, None)) for spec in specs]
    local = [spec for spec, plan in zip(specs, plans, strict=True) if plan.target != "modal"]
    if local:
        fail(f"`{local[0]}` runs locally (target local): there is nothing on Modal to check",
             "Give it a Modal spec, or `megaspec apply` it to run it here")
    raise click.exceptions.Exit(report(check_modal(plans, echo=lambda line: click.echo(line, err=True))))


def report(checks) -> int:
    """Print each check; exit 1 when one failed."""
    for check in checks:
        click.echo(check.line())
        if not check.ok and check.hint:
            click.echo(f"      = help: {check.hint}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_ERRORS


COMMANDS = [doctor]
