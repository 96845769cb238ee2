"""`megaspec apply SWEEP_DIR` (or `apply TEMPLATE --resume SWEEP_DIR`): a sweep taken up where it stopped.

sweep.json (states refreshed from the runs' manifests; a local run whose process is gone is ended
first) -> the runs still to do: `planned` and `interrupted` ones, and `error` ones with
`--retry-failed`; never an `ok` or `diverged` one (those are results) -> each launched again in its
own run directory from the plan.json stored there, so names, run ids, flags (`--steps`) and the
number of run folders stay those of the sweep. A run that ran before has its earlier attempt
archived in `attempts/<n>/` and continues from its latest complete checkpoint, if any.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..runs.manifest import BackendError, read_manifest
from .run_output import EXIT_FAILED, EXIT_OK, fail

AGAIN_STATES = frozenset({"interrupted", "error"})  # ran before: the earlier attempt is archived


def to_resume(states: dict[str, str], retry_failed: bool) -> list[str]:
    """The run ids (in sweep order) a resume launches: planned, interrupted, and error with `--retry-failed`."""
    wanted = {"planned", "interrupted", *(("error",) if retry_failed else ())}
    return [run_id for run_id, state in states.items() if state in wanted]


def resume_sweep(sweep_dir: Path, *, retry_failed: bool, fail_fast: bool, progress: bool) -> int:
    from megaspec.runtime.contract.plan import read_plan
    from megaspec.runtime.contract.rundir import PLAN_FILE

    from ..runs.sweep_manifest import refresh
    from .apply_sweep import run_local

    try:
        sweep = _settled(sweep_dir)
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    states = {r.run_id: r.state for r in sweep.runs}
    todo = to_resume(states, retry_failed)
    kept = ", ".join(f"{n} {s}" for s, n in sweep.counts().items() if s not in ("planned", "interrupted")
                     and not (retry_failed and s == "error"))
    click.echo(f"resume sweep {sweep.sweep_id}: {len(todo)} of {len(sweep.runs)} run(s) to run"
               + (f"; kept as they are: {kept}" if kept else ""))
    if not todo:
        hint = " (`--retry-failed` runs the failed ones again)" if states and "error" in states.values() else ""
        click.echo(f"nothing to resume{hint}; table and plots: megaspec report {sweep_dir}")
        return EXIT_FAILED if "error" in states.values() else EXIT_OK
    entries = {r.run_id: r for r in sweep.runs}
    if sweep.target == "modal":
        return _resume_modal(sweep_dir, [entries[i] for i in todo])
    planned = [(entries[i].name, read_plan(sweep_dir / entries[i].run_dir / PLAN_FILE), states[i] in AGAIN_STATES)
               for i in todo]
    code = run_local(sweep_dir, planned, fail_fast=fail_fast, progress=progress)
    refresh(sweep_dir)
    return code


def _settled(sweep_dir: Path):
    """The sweep with every local run whose process is gone ended (orphaned), then refreshed."""
    from ..runs.local_process import end_if_orphaned
    from ..runs.sweep_manifest import read_sweep, refresh

    for run in read_sweep(sweep_dir).runs:
        run_dir = sweep_dir / run.run_dir
        try:
            manifest = read_manifest(run_dir)
        except (OSError, ValueError):
            continue  # refresh keeps the state sweep.json has; report shows the damaged run
        if manifest.backend == "local" and manifest.state == "running":
            end_if_orphaned(run_dir, manifest)
    return refresh(sweep_dir)


def _resume_modal(sweep_dir: Path, todo: list) -> int:
    """Modal: the `planned` runs go out as free slots allow; a run that ran resumes from its
    checkpoints Volume when its spec is applied again, so it is named, not relaunched here."""
    from .apply_sweep import launch_modal

    again = [r for r in todo if r.state != "planned"]
    for r in again:
        click.echo(f"not relaunched: {r.name} ({r.state}) ran on Modal; `megaspec apply {r.spec}` "
                   "runs it again (it resumes from its checkpoints Volume)", err=True)
    if len(again) == len(todo):
        return EXIT_FAILED
    return launch_modal(sweep_dir)
