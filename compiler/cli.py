"""The `megaspec` command line: one click group; each verb lives in `commands/`.

Exit codes: 0 clean (warnings allowed), 1 errors found, 2 usage error, 3 internal error.
Heavy imports happen inside the commands, so `megaspec lint` starts fast.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .commands import apply as apply_cmds
from .commands import compile as compile_cmds
from .commands import lint as lint_cmds

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="megaspec")
def cli() -> None:
    """Declarative YAML experiment specs for FSDP2 training on Modal.

    lint -> compile -> apply -> receipt. Start with `megaspec lint specs/`.
    """


for module in (lint_cmds, compile_cmds, apply_cmds):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: click handles usage errors (exit 2); anything unexpected is exit 3."""
    try:
        code = cli.main(args=argv, prog_name="megaspec", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = EXIT_USAGE
    except click.Abort:
        click.echo("Aborted.", err=True)
        code = 130
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a bare traceback
        click.echo(f"internal error[MS902]: {type(e).__name__}: {e}\n"
                   "  = help: this is a bug in megaspec; please report it with the command you ran", err=True)
        code = EXIT_INTERNAL
    sys.exit(code or 0)
