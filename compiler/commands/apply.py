"""`megaspec apply`: from a checked spec to a launched run.

apply: check_spec (errors stop here) -> lower (the target from `--target`, else the spec's) ->
render into `build/<name>/` -> backend. Local runs finish in this process and end with a
summary; modal runs detach and are finished later by `collect`, which polls once per call and
is safe to repeat. A sweep template or a folder of specs goes to `apply_sweep.py` (one batch).
Exit codes: 0 ok (or detached / still running), 1 a failed run or a user mistake, 2 usage,
130 interrupted by Ctrl-C, 143 by SIGTERM (local runs: 128 + the signal).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from megaspec.runtime.contract.rundir import MANIFEST_FILE, PLAN_FILE

from ..runs.interrupts import signum_of
from ..runs.manifest import BackendError, read_manifest
from .prepare import apply_local, build_app, lower_checked, steps_adjustment
from .run_output import EXIT_OK, exit_code, fail, print_outcome, signalled

DEFAULT_MAX_COST_USD = 20.0  # a sweep estimated above this asks first (the preview shows the estimate)


def _checked_spec(spec_path: str, steps: int | None):
    """Lint the spec (with `--steps` applied); print its problems; stop on errors (apply never launches a bad spec)."""
    from ..diagnostics import has_errors
    from ..lint.check import BASE_NOT_A_RUN, check_spec
    from ..lint.config import load_config
    from ..lint.report import render_report
    from ..spec.compose import is_base_file

    checked = check_spec(spec_path, config=load_config(), adjust=steps_adjustment(steps))
    if checked.diagnostics:
        click.echo(render_report("concise", checked.diagnostics, texts=checked.smap.texts, num_files=1), err=True,
                   nl=False)
    if not has_errors(checked.diagnostics) and is_base_file(spec_path):
        fail(f"`{spec_path}` {BASE_NOT_A_RUN}; nothing was launched", "Apply a spec whose `extends:` names it")
    if has_errors(checked.diagnostics) or checked.spec is None:
        fail(f"`{spec_path}` has errors; nothing was launched", "Fix them, then `megaspec lint` it again")
    return checked


def _apply_modal(plan, app_py: Path, run_dir: Path, announce) -> int:
    from ..runs.backends import modal as modal_backend

    def echo(line: str) -> None:
        announce()  # once the backend has written the run's manifest
        click.echo(line, err=True)

    try:
        manifest = modal_backend.launch(plan, app_py, run_dir, echo=echo)
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM or SIGHUP: the manifest says so, with the app id
        announce()
        print_outcome(run_dir, read_manifest(run_dir))
        return signalled(signum_of(e))
    announce()
    if manifest.state != "detached":
        print_outcome(run_dir, manifest)
        return exit_code(manifest)
    click.echo(f"detached: {manifest.modal.function_call_id}  {manifest.modal.dashboard_url or ''}".rstrip())
    for note in manifest.notes:
        click.echo(f"note: {note}")
    click.echo(f"state: {manifest.state}   manifest: {run_dir / MANIFEST_FILE}")
    click.echo(f"follow it with: megaspec status {run_dir.parent}   (megaspec collect {run_dir} stores the receipt)")
    return EXIT_OK


def _announcer(plan, run_dir: Path, spec_text: str):
    """Once and only once the run folder's manifest exists (a folder a refused or interrupted launch never
    created is never announced): the spec as applied stored in it for `megaspec rerun`, and
    `apply: NAME -> RUN_DIR (...)` said. What `rerun` keeps never stops the run (a Modal one is already
    spawned): a storage error there is said, and the run goes on without it."""
    from ..runs.stored_spec import keep_for_rerun

    kind = f"{plan.distributed.world_size} {plan.distributed.device} rank(s)"
    again = f", rerun of {plan.run.rerun_of}" if plan.run.rerun_of else ""
    line = (f"apply: {plan.name} -> {run_dir} ({plan.target}, {kind}{', REHEARSAL' if plan.run.rehearsal else ''}"
            f"{again})")
    said: list[bool] = []

    def announce() -> None:
        if not said and (run_dir / MANIFEST_FILE).is_file():
            said.append(True)
            warning = keep_for_rerun(run_dir, spec_text, plan.code_here())
            if warning:
                click.echo(warning, err=True)
            click.echo(line)

    return announce


def _resumable(plan, run_dir: Path):
    from ..runs.backends import local

    try:
        return local.resumable(plan, run_dir)
    except BackendError as e:
        fail(str(e), e.hint, e.code)


def _sweep_to_resume(spec: str, resume_dir: str | None, steps: int | None, target: str | None) -> Path | None:
    """The sweep directory `apply` resumes (SPEC itself, or `--resume`), or None; a sweep resumes with
    the flags each run was applied with (its plan.json), so new ones are refused."""
    from ..runs.sweep_manifest import is_sweep_dir

    found = next((Path(p) for p in (spec, resume_dir) if p and is_sweep_dir(p)), None)
    if found is not None and (steps is not None or target is not None):
        fail(f"a sweep resumes with the flags its runs were applied with (each run's {PLAN_FILE})",
             "Leave out --steps and --target, or apply the template again for a new sweep")
    return found


def _refuse_links(runs_dir: Path, build_dir: Path, resume_dir: str | None) -> None:
    """Before anything is written: no link on the way to the runs and build folders (from the folder
    the user named, or the current one for a default), and none at all inside a run or sweep to resume."""
    from megaspec.runtime.contract.files import WriteRefused, refuse_links

    from .paths import links_inside, named_base

    with _refused_writes():
        refuse_links(named_base(runs_dir, "runs_dir"), runs_dir)
        refuse_links(named_base(build_dir, "out_dir", "old_build_dir"), build_dir)
        for link in links_inside(Path(resume_dir)) if resume_dir else []:
            raise WriteRefused(link, "a symbolic link in what is resumed")


@contextmanager
def _refused_writes() -> Iterator[None]:
    """A WriteRefused (a link or a special file where apply would write) as one error line, exit 1."""
    from megaspec.runtime.contract.files import WriteRefused

    try:
        yield
    except WriteRefused as e:
        fail(f"{e}; nothing written there")


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--target", type=click.Choice(["local", "modal"]), help="Override the spec's `target`.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where runs/<run-id>/ (manifest, plan, receipt, logs) is written.")
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help=f"Where `<name>/app.py` and `<name>/{PLAN_FILE}` go (as `megaspec compile -o`).")
@click.option("--build-dir", "old_build_dir", default=None, hidden=True, type=click.Path(file_okay=False),
              help="The former name of `--out`.")
@click.option("--steps", type=click.IntRange(min=1), help="Override `train.steps` for this run.")
@click.option("--no-progress", is_flag=True, help="No live progress line (local runs).")
@click.option("--max-cost", type=click.FloatRange(min=0), default=DEFAULT_MAX_COST_USD, show_default=True,
              help="Sweeps: the estimated total (USD) above which apply asks first (or needs --yes).")
@click.option("--yes", is_flag=True, help="Sweeps: launch even above --max-cost, without asking.")
@click.option("--fail-fast", is_flag=True, help="Local sweeps: stop at the first failed run.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, exists=True),
              help="Continue the local run in this run directory from its latest complete checkpoint "
                   "(same spec and flags); a sweep directory resumes the sweep.")
@click.option("--retry-failed", is_flag=True, help="Resuming a sweep: run its `error` runs again too.")
def apply(spec: str, target: str | None, runs_dir: str, out_dir: str, old_build_dir: str | None,
          steps: int | None, no_progress: bool, max_cost: float, yes: bool, fail_fast: bool,
          resume_dir: str | None, retry_failed: bool) -> None:
    """Compile SPEC and run it: locally to a receipt, or on Modal, detached, to `collect` later.

    SPEC may be a sweep template (a spec with `sweep:`) or a folder of specs: every run is linted,
    previewed with its estimated cost, and launched as one sweep under RUNS_DIR/<sweep-id>/. A sweep
    directory (RUNS_DIR/<sweep-id>, or `--resume` it) resumes that sweep, locally or on Modal: only its
    `planned` and `interrupted` runs are launched (and `error` ones with `--retry-failed`), in their
    own run directories, with the flags they were applied with, continuing from their latest complete
    checkpoint (the earlier attempt kept in `attempts/<n>/`); `ok` runs are never run again.
    """
    from megaspec.runtime.contract.errors import launcher_signals

    from .apply_sweep import apply_sweep
    from .paths import require_existing
    from .prepare import interrupted

    require_existing([spec])
    sweep_dir = _sweep_to_resume(spec, resume_dir, steps, target)
    if sweep_dir is not None:
        from .resume_sweep import resume_sweep

        _refuse_links(Path(runs_dir), Path(old_build_dir or out_dir), str(sweep_dir))
        try:
            with _refused_writes(), launcher_signals():  # a signal between its runs: one line, 128 + it
                code = resume_sweep(sweep_dir, retry_failed=retry_failed, fail_fast=fail_fast,
                                    progress=not no_progress)
        except KeyboardInterrupt as e:
            code = interrupted(e, None, sweep_in=sweep_dir)
        raise click.exceptions.Exit(code)
    build_dir = Path(old_build_dir or out_dir)
    if resume_dir and Path(spec).is_dir():
        fail("`--resume` continues one run, not a sweep", "Name one spec and the run directory it ran in")
    _refuse_links(Path(runs_dir), build_dir, resume_dir)
    checked = None
    try:
        with launcher_signals():  # SIGTERM and SIGHUP end it as Ctrl-C does, with a manifest, at any moment
            checked = None if Path(spec).is_dir() else _checked_spec(spec, steps)
            if checked is not None and checked.spec.sweep is None:
                raise click.exceptions.Exit(apply_one(checked, target=target, runs_dir=Path(runs_dir),
                                                       build_dir=build_dir, steps=steps, progress=not no_progress,
                                                       resume_dir=resume_dir))
    except KeyboardInterrupt as e:  # before the run folder existed: the backends end their own manifests
        raise click.exceptions.Exit(interrupted(e, None)) from None
    if resume_dir:
        fail("`--resume` continues one run, not a sweep", "Name one spec and the run directory it ran in")
    try:
        with _refused_writes(), launcher_signals():  # a signal between the runs too: one line, 128 + it
            code = apply_sweep(spec, checked, target=target, runs_dir=Path(runs_dir), build_dir=build_dir,
                               steps=steps, yes=yes, max_cost=max_cost, fail_fast=fail_fast, progress=not no_progress)
    except KeyboardInterrupt as e:
        code = interrupted(e, None, sweep_in=Path(runs_dir))
    raise click.exceptions.Exit(code)


def apply_one(checked, *, target: str | None, runs_dir: Path, build_dir: Path, steps: int | None, progress: bool,
              resume_dir: str | None = None, name: str | None = None, rerun_of: str | None = None,
              git: tuple[str | None, bool | None] | None = None) -> int:
    """One spec (not a sweep): lower (`name`, `rerun_of`, `git`: a rerun's), build, then the backend; the exit code."""
    from ..spec.expand import applied_text

    plan = lower_checked(checked, target=target, steps=steps, name=name, rerun_of=rerun_of, git=git)
    if resume_dir:
        plan = _resumable(plan, Path(resume_dir))
    with _refused_writes():
        app_py = build_app(plan, build_dir)
    run_dir = Path(resume_dir) if resume_dir else runs_dir / plan.run.run_id
    announce = _announcer(plan, run_dir, applied_text(checked))
    try:
        if plan.target == "local":
            return apply_local(plan, run_dir, progress=progress, resume=bool(resume_dir), announce=announce)
        return _apply_modal(plan, app_py, run_dir, announce)
    except BackendError as e:
        fail(str(e), e.hint, e.code)


COMMANDS = [apply]
