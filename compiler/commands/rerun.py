"""`megaspec rerun RUN_DIR`: a past run run again, exactly, as a new run that points at it.

RUN_DIR's spec.yaml (the spec as applied, bases folded in) -> lint (with the `--steps` the run was
applied with) -> lower with its `--target`, its name, and `rerun_of` = its run id -> the backend, as
`apply` does. The new run's manifest and receipt say `rerun_of`; its plan hash is the original's when
nothing but the run changed, so `receipts compare` of the two shows only provenance and timing.
"""

from __future__ import annotations

from pathlib import Path

import click

from megaspec.runtime.contract.rundir import PLAN_FILE, SPEC_FILE

from .run_output import fail, require_manifest


@click.command("rerun")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the new run's folder is written.")
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False,
                                                                                            path_type=Path),
              help="Where the new run's `<name>/app.py` goes.")
@click.option("--no-progress", is_flag=True, help="No live progress line (local runs).")
def rerun(run_dir: Path, runs_dir: Path, out_dir: Path, no_progress: bool) -> None:
    """Run RUN_DIR's run again from the spec stored in it, with the flags it was applied with
    (`--steps`, `--target`), as a new run under RUNS_DIR whose receipt names RUN_DIR's run (`rerun_of`)."""
    from megaspec.runtime.contract.errors import launcher_signals
    from megaspec.runtime.contract.plan import read_plan

    from .apply import _checked_spec, apply_one
    from .prepare import interrupted

    original = require_manifest(run_dir)
    if not (run_dir / SPEC_FILE).is_file():
        fail(f"`{run_dir}` holds no {SPEC_FILE}: it was applied by a megaspec that did not store the spec it ran",
             "Apply its spec again (`megaspec apply SPEC`, with the same flags)")
    try:
        flags = read_plan(run_dir / PLAN_FILE).run.flags
    except (OSError, ValueError) as e:
        fail(f"cannot read `{run_dir / PLAN_FILE}`: {str(e).splitlines()[0]}", "Apply its spec again")
    steps, target = flags.get("steps"), flags.get("target")
    try:
        with launcher_signals():
            checked = _checked_spec(str(run_dir / SPEC_FILE), steps if isinstance(steps, int) else None)
            raise click.exceptions.Exit(apply_one(
                checked, target=target if isinstance(target, str) else None, runs_dir=runs_dir, build_dir=out_dir,
                steps=steps if isinstance(steps, int) else None, progress=not no_progress, name=original.name,
                rerun_of=original.run_id))
    except KeyboardInterrupt as e:
        raise click.exceptions.Exit(interrupted(e, None)) from None


COMMANDS = [rerun]
