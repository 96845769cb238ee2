"""Launching a Modal sweep's queued runs into free slots: no daemon, only the commands people run.

`apply` launches as many runs as `sweep.max_parallel` allows (all when it is unset); every later
`collect` or `status` of the sweep directory refreshes the runs' states and calls `fill_slots`
again, so the next `planned` runs start as earlier ones finish. A run whose launch fails ends
`error` (stage bootstrap, in its own manifest) and does not hold a slot.

A resume (`apply SWEEP_DIR`) first puts the runs to do again (`interrupted`, and `error` with
`--retry-failed`) back to `planned` in their own folders (`requeue`): the same run id, name and plan,
so the container writes to the same run folder on the Volume and continues from the checkpoints
there; the earlier attempt's manifest (its Modal call) and files are kept in `attempts/<n>/`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from megaspec.runtime.contract.claim import Claimed, claim
from megaspec.runtime.contract.rundir import (
    ATTEMPTS_DIR,
    MANIFEST_CLAIM,
    MANIFEST_FILE,
    PLAN_FILE,
    archive_previous_attempt,
    archived_attempts,
)

from .interrupts import held_signals
from .manifest import BackendError, advance, new_manifest, read_manifest, write_manifest
from .sweep_manifest import IN_FLIGHT_STATES, SWEEP_CLAIM, SweepManifest, refresh

AGAIN_STATES = frozenset({"interrupted", "error"})  # the ended states a resume may run again (never ok, diverged)

Launch = Callable[..., object]  # modal backend's launch(plan, app, run_dir, echo=...) -> Manifest


@dataclass
class Launched:
    sweep: SweepManifest
    run_ids: list[str] = field(default_factory=list)  # every run a launch was tried for
    failed: list[str] = field(default_factory=list)  # those whose launch ended them (`error`, `interrupted`)


def free_slots(sweep: SweepManifest) -> int:
    in_flight = sum(run.state in IN_FLIGHT_STATES for run in sweep.runs)
    waiting = sum(run.state == "planned" for run in sweep.runs)
    cap = sweep.max_parallel if sweep.max_parallel is not None else waiting + in_flight
    return max(0, min(cap - in_flight, waiting))


def _app_for(plan, app: str | None) -> Path:
    """A queued run's Modal app, rendered again from its plan (the same bytes apply rendered), never
    imported from a file a sweep.json names (anyone's code): into the build folder apply used when
    that lies inside this project (the current folder, no link on the way), else into `build/`."""
    from ..codegen.render import APP_FILE, render, write_build

    here = Path.cwd()
    used = Path(os.path.abspath(Path(app).parent.parent)) if app else here / "build"
    build_dir = used.relative_to(here) if used.is_relative_to(here) else Path("build")
    return write_build(render(plan), build_dir, plan.name, links_from=Path(".")) / APP_FILE


def fill_slots(sweep_dir: Path, *, echo: Callable[[str], None] = print, launch: Launch | None = None,
               again: Collection[str] = ()) -> Launched:
    """Launch `planned` runs, in sweep order, while there are free slots; the refreshed sweep. `again`:
    the ended states (of AGAIN_STATES) whose runs are put back to `planned` first (`requeue`).

    One process at a time decides and launches (the sweep's claim, held from the refresh to the last
    launch): two commands run at once never both fill the same free slot, nor both run a run again.
    A resume (`again`: the user asked for these runs) waits for the claim, then launches what is still
    to launch; a `status` or `collect` that finds it held (by a launch, or by a refresh writing
    sweep.json) launches nothing and says who holds it."""
    sweep_dir = Path(sweep_dir)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(claim(sweep_dir / SWEEP_CLAIM, wait=bool(again)))
        except Claimed as e:
            who = f"process {e.holder}" if e.holder else "another process"
            echo(f"not launching queued runs here: {who} holds this sweep's claim (launching its runs, or "
                 "recording their states); they show in the next `status`")
            return Launched(refresh(sweep_dir))
        return _fill(sweep_dir, echo, launch, frozenset(again) & AGAIN_STATES)


def requeue(run_dir: Path, again: Collection[str]) -> bool:
    """The run in `run_dir` back to `planned`, when its manifest (read now, under the run's claim) is in
    one of the `again` states (of AGAIN_STATES: never `ok` or `diverged`, never in flight): its manifest
    copied and its attempt's files moved to `attempts/<n>/`, then a `planned` manifest of the same plan
    written in its place. A signal meanwhile is held until both are done, so the folder says either the
    old state or `planned`. False: nothing to do (another command ran it again first, or it is in
    flight or ended otherwise)."""
    from megaspec.runtime.contract.plan import read_plan

    with claim(run_dir / MANIFEST_CLAIM, wait=True), held_signals():
        before = read_manifest(run_dir)
        if before.state not in frozenset(again) & AGAIN_STATES:
            return False
        plan = read_plan(run_dir / PLAN_FILE)
        archive = archive_previous_attempt(run_dir, copied=(MANIFEST_FILE,))
        note = _attempt_note(archive, before)
        write_manifest(run_dir, advance(new_manifest(plan, backend=before.backend), "planned", notes=[note]))
        return True


def _attempt_note(archive: Path, before) -> str:
    """`attempt 2 in this run folder; attempt 1 (interrupted, call fc-1) is in attempts/1/: ...`."""
    call = before.modal.function_call_id if before.modal else None
    return (f"attempt {int(archive.name) + 1} in this run folder; attempt {archive.name} ({before.state}"
            + (f", call {call}" if call else "") + f") is in {ATTEMPTS_DIR}/{archive.name}/: "
            f"`megaspec logs {archive}` shows its logs")


def _requeue_all(sweep_dir: Path, sweep: SweepManifest, again: frozenset[str], echo: Callable[[str], None]) -> bool:
    """Each run of the sweep in an `again` state put back to `planned` (the app of a launch cut off before
    its call was recorded stopped first); whether any was."""
    from .backends.modal_collect import stop_cut_off_launch

    moved = False
    for run in sweep.runs:
        if run.state in again:
            try:
                stop_cut_off_launch(read_manifest(sweep_dir / run.run_dir), echo)
                moved = requeue(sweep_dir / run.run_dir, again) or moved
            except (ValueError, OSError, BackendError) as e:  # unreadable, unwritable, or an app not stopped:
                # it stays as it is (its manifest is rewritten last), the others go
                echo(f"{run.name}: not run again: {str(e).splitlines()[0]}"
                     + (f"\n  = help: {e.hint}" if isinstance(e, BackendError) else ""))
    return moved


def _launch_line(name: str, run_dir: Path) -> str:
    """`launching NAME -> RUN_DIR`, or for a run done again `relaunching NAME (interrupted, attempt 2) -> ...`."""
    done = archived_attempts(run_dir)
    if not done:
        return f"launching {name} -> {run_dir}"
    try:
        before = read_manifest(run_dir / ATTEMPTS_DIR / str(done)).state
    except (OSError, ValueError):
        before = "ran before"
    return f"relaunching {name} ({before}, attempt {done + 1}) -> {run_dir}"


def _notes(run_dir: Path) -> list[str]:
    """What the queued manifest says that its launch keeps (a run done again: where its earlier attempt is)."""
    try:
        return read_manifest(run_dir).notes
    except (OSError, ValueError):
        return []


def _fill(sweep_dir: Path, echo: Callable[[str], None], launch: Launch | None, again: frozenset[str]) -> Launched:
    from megaspec.runtime.contract.plan import read_plan

    if launch is None:
        from .backends.modal import launch
    sweep = refresh(sweep_dir, claimed=True)
    if sweep.target != "modal":
        return Launched(sweep)
    if again and _requeue_all(sweep_dir, sweep, again, echo):
        sweep = refresh(sweep_dir, claimed=True)
    out = Launched(sweep)
    queued = [run for run in sweep.runs if run.state == "planned"]
    for run in queued[:free_slots(sweep)]:
        run_dir = sweep_dir / run.run_dir
        echo(_launch_line(run.name, run_dir))
        try:
            plan = read_plan(run_dir / PLAN_FILE)
        except ValueError as e:  # UnreadableFile or a plan of the wrong shape: that run waits, the others go
            echo(f"{run.name}: not launched: {str(e).splitlines()[0]}")
            continue
        out.run_ids.append(run.run_id)
        try:
            # the app is rendered only once the launch has checked the credentials and reached Modal
            manifest = launch(plan, lambda plan=plan, app=run.app: _app_for(plan, app), run_dir, echo=echo,
                              notes=_notes(run_dir))
        except KeyboardInterrupt:  # a signal stops the filling; the run's manifest says where it got to
            refresh(sweep_dir, claimed=True)
            echo(f"{run.name}: interrupted while launching; the runs after it stay `planned`")
            raise
        if manifest.state != "detached":  # said here: nothing else prints a launch that failed
            out.failed.append(run.run_id)
            echo(f"{run.name}: {manifest.state}" + (f"  {manifest.error.summary()}" if manifest.error else ""))
    out.sweep = refresh(sweep_dir, claimed=True) if out.run_ids else sweep
    return out
