"""`megaspec apply SWEEP_DIR` (or `apply TEMPLATE --resume SWEEP_DIR`): a sweep taken up where it stopped.

sweep.json (states refreshed from the runs' manifests; a local run whose process is gone is ended
first, an unfinished Modal run polled once) -> the runs still to do: `planned` and `interrupted`
ones, and `error` ones with `--retry-failed`; never an `ok` or `diverged` one (those are results),
nor one still in flight -> each launched again in its own run directory from the plan.json stored
there, so names, run ids, flags (`--steps`) and the number of run folders stay those of the sweep.
A run that ran before has its earlier attempt archived in `attempts/<n>/` (on Modal: its manifest,
with the call, whose logs `megaspec logs RUN_DIR/attempts/<n>` still shows) and continues from its
latest complete checkpoint, if any: locally in its run folder, on Modal from its checkpoints Volume
(the same plan, so the same checkpoint folder and run folder there). Modal runs go out as
`sweep.max_parallel` allows (runs/sweep_launch.py), the rest stay `planned` for `collect`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..runs.manifest import BackendError
from ..runs.sweep_launch import AGAIN_STATES
from .run_output import EXIT_FAILED, EXIT_OK, fail


def again_states(retry_failed: bool) -> frozenset[str]:
    """The ended states a resume runs again: `interrupted`, and `error` with `--retry-failed`."""
    return AGAIN_STATES if retry_failed else AGAIN_STATES - {"error"}


def to_resume(states: dict[str, str], retry_failed: bool) -> list[str]:
    """The run ids (in sweep order) a resume launches: planned, interrupted, and error with `--retry-failed`."""
    wanted = {"planned", *again_states(retry_failed)}
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
    kept = ", ".join(f"{n} {s}" for s, n in sweep.counts().items() if s not in {"planned", *again_states(retry_failed)})
    click.echo(f"resume sweep {sweep.sweep_id}: {len(todo)} of {len(sweep.runs)} run(s) to run"
               + (f"; kept as they are: {kept}" if kept else ""))
    if not todo:
        hint = " (`--retry-failed` runs the failed ones again)" if states and "error" in states.values() else ""
        click.echo(f"nothing to resume{hint}; table and plots: megaspec report {sweep_dir}")
        return EXIT_FAILED if "error" in states.values() else EXIT_OK
    if sweep.target == "modal":
        from .apply_sweep import launch_modal

        return launch_modal(sweep_dir, again=again_states(retry_failed))
    entries = {r.run_id: r for r in sweep.runs}
    planned = [(entries[i].name, read_plan(sweep_dir / entries[i].run_dir / PLAN_FILE), states[i] in AGAIN_STATES)
               for i in todo]
    code = run_local(sweep_dir, planned, fail_fast=fail_fast, progress=progress)
    refresh(sweep_dir)
    return code


def _settled(sweep_dir: Path):
    """The sweep with its unfinished runs brought up to date (a local run whose process is gone ended,
    a Modal run polled once: a run still in flight is never run again), then refreshed."""
    from ..runs.refresh import refresh as refresh_runs
    from ..runs.refresh import run_dirs
    from ..runs.sweep_manifest import refresh

    refresh_runs(run_dirs(sweep_dir), echo=lambda line: click.echo(line, err=True))
    return refresh(sweep_dir)
