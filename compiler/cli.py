"""The `megaspec` command line: one click group; each verb lives in `commands/`.

Exit codes: 0 clean (warnings allowed), 1 errors found (or a run that failed), 2 usage error, 3 internal
error, 130 interrupted by Ctrl-C (a run stopped by another signal: 128 + the signal).
Heavy imports happen inside the commands, so `megaspec lint` starts fast.
"""

from __future__ import annotations

import gc
import importlib
import os
import re
import sys

import click

from . import __version__
from .codes import EXIT_INTERNAL, EXIT_USAGE

# megaspec uses no pydantic plugins; skipping their entry-point scan (the metadata of every installed
# package) saves 1-3 ms of every start.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# Importing pydantic and building the spec model allocates a few hundred thousand objects that all
# stay alive; a young-generation collection every 700 allocations (the default) is ~5% of linting
# one spec. Rarer collections still bound memory over a 1,000-spec batch.
gc.set_threshold(100_000, 50, 100)


# command -> module in `commands/` that defines it. Modules are imported only when their command
# runs, so `megaspec lint` never pays for the runtime's receipt models or Jinja2.
COMMAND_MODULES = {
    "lint": "lint", "schema": "lint", "explain": "lint", "rules": "lint",
    "compile": "compile", "plan": "compile",
    "sweep": "sweep", "apply": "apply", "rerun": "rerun", "cache": "cache", "collect": "runs", "cancel": "runs", "status": "runs", "logs": "runs", "receipts": "receipts",
    "report": "report", "data": "data", "doctor": "doctor",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(name)
        if module_name is None:
            return None
        module = importlib.import_module(f"{__package__}.commands.{module_name}")
        return next((c for c in module.COMMANDS if c.name == name), None)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's first sentence whole, wrapped: click cuts it at ~45 characters, or at an `e.g.`."""
        rows = [(name, first_sentence(command.help or "")) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\.)\.(?=\s|$)")  # nor does `SPEC...`


def first_sentence(text: str) -> str:
    """The first sentence of a docstring's first paragraph (an `e.g.`, `i.e.` or `...` does not end it)."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    end = _SENTENCE_END.search(paragraph)
    return paragraph[: end.end()] if end else paragraph


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="megaspec")
def cli() -> None:
    """Declarative YAML experiment specs for FSDP2 training on Modal.

    lint -> compile -> apply -> receipt. Start with `megaspec lint specs/`.
    """
    from .lint.credentials import mask_output
    from .safe_text import filtered_output

    # the last pass over every byte a command prints: known token shapes and secret-named environment values
    click.get_current_context().with_resource(filtered_output(mask_output))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: click handles usage errors (exit 2); anything unexpected is exit 3. Ctrl-C,
    SIGTERM and SIGHUP end every command alike (`raising_signals`): its `finally` blocks run (no temp
    file left by an atomic write), one line says which signal, and the exit is 128 + the signal."""
    from .runs.interrupts import raising_signals

    try:
        with raising_signals():
            code = cli.main(args=argv, prog_name="megaspec", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = EXIT_USAGE
    except click.Abort as e:  # Ctrl-C, SIGTERM or SIGHUP
        from .runs.interrupts import signal_name, signalled, signum_of

        signum = signum_of(e.__cause__ if isinstance(e.__cause__, KeyboardInterrupt) else KeyboardInterrupt())
        click.echo(f"Aborted ({signal_name(signum)}).", err=True)
        code = signalled(signum)
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a bare traceback
        from .lint.credentials import redact_text, tokens_in_text  # the message may quote a spec value

        reason = f"{type(e).__name__}: {e}"
        click.echo(f"internal error[MS902]: {redact_text(reason, tokens_in_text(reason))}\n"
                   "  = help: this is a bug in megaspec; please report it with the command you ran", err=True)
        code = EXIT_INTERNAL
    # The interpreter's exit-time collections walk every object still alive: after `apply` has
    # imported torch that is ~0.5 s of a 2-core machine's time for nothing. Frozen objects are skipped.
    gc.freeze()
    if isinstance(code, int) and code > 128 and "torch.distributed" in sys.modules:
        _exit_after_signal(code)
    sys.exit(code or 0)


def _exit_after_signal(code: int) -> None:
    """A launcher a signal stopped may hold torch's C++ threads (the rendezvous store of a run stopped while
    its ranks met), whose destructors abort the process at interpreter finalization (`terminate called
    without an active exception`, exit -6 instead of 128 + the signal; pytorch/pytorch#179291, as the
    ranks' teardown says). Everything is written and said by now: the exit functions run (temp folders,
    log handlers), then the process ends without finalization."""
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
