"""What `apply` and `apply_sweep` share: a lint-clean spec -> a Plan and its app; a local run to its end."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import click

from megaspec.runtime.contract.rundir import MANIFEST_FILE

from ..codes import EXIT_USAGE
from ..runs.manifest import BackendError
from .run_output import exit_code, print_outcome, signalled


def with_steps(spec, steps: int):
    """`--steps N` shortens (or lengthens) a run; warmup shrinks so at least one step is measured.

    Step 1 is always excluded, then `warmup_steps`: N steps measure N - 1 - warmup of them.
    """
    warmup = min(spec.train.warmup_steps, max(steps - 2, 0))
    train = spec.train.model_copy(update={"steps": steps, "warmup_steps": warmup})
    return spec.model_copy(update={"train": train})


def steps_adjustment(steps: int | None):
    """`--steps` as the Spec change `check_spec` applies before the rules (so lint judges the run that
    will happen), or None."""
    return partial(with_steps, steps=steps) if steps is not None else None


def lower_checked(checked, *, target: str | None, steps: int | None, name: str | None = None,
                  sweep_id: str | None = None, rerun_of: str | None = None,
                  git: tuple[str | None, bool | None] | None = None):
    """A lint-clean spec (checked with `steps_adjustment(steps)`) -> Plan with a fresh run id; `name`
    renames the run (a sweep's runs carry its name), `sweep_id` names the sweep it is one of, `rerun_of`
    the run it repeats. The command-line overrides are kept in the plan (`run.flags`) for `rerun`, and
    the git revision and dirty flag of the spec's repository (`git`: a sweep's template's, read once)."""
    from megaspec.runtime.contract.git_revision import git_revision

    from ..codegen.build import plan_for
    from ..runs.run_id import mint_run_id

    name = name or checked.spec.name
    overridden = {"train.steps": "command line (--steps)"} if steps is not None else {}
    plan = plan_for(checked, target=target, run_id=mint_run_id(name), overridden=overridden, name=name,
                    sweep_id=sweep_id)
    flags = {key: value for key, value in (("steps", steps), ("target", target)) if value is not None}
    sha, dirty = git if git is not None else git_revision(checked.path)
    return plan.model_copy(update={"run": plan.run.model_copy(update={
        "flags": flags, "rerun_of": rerun_of, "git_sha": sha, "git_dirty": dirty})})


def build_app(plan, build_dir: Path, links_from: Path | None = None) -> Path:
    """Render the plan's Modal app into `build_dir/<name>/`; the app.py path. No folder below
    `links_from` (default: `build_dir`) may be a link (WriteRefused)."""
    from ..codegen.render import APP_FILE, render, write_build

    return write_build(render(plan), build_dir, plan.name, links_from=links_from) / APP_FILE


RUNTIME_IMPORTS = ("torch", "numpy")  # the `runtime` extra: a rank imports both (DCP saves through numpy)


def _require_runtime() -> None:
    """Found, not imported: the local backend starts its rank processes' fork server before it
    imports torch itself, so both imports run at once."""
    from importlib.util import find_spec

    missing = [name for name in RUNTIME_IMPORTS if find_spec(name) is None]
    if missing:
        names = " and ".join(f"`{m}`" for m in missing)
        raise BackendError(f"a local run needs {names}, not installed here; nothing was run",
                           hint="pip install torch==2.13.0 'megaspec[runtime]' (torch first, for the CPU build)",
                           code=EXIT_USAGE)


def _require_trackers(plan) -> None:
    """A local run's trackers run here, so their packages must be installed (on Modal, MS601 checks the image)."""
    import importlib.util

    t = plan.tracking
    asked = [("tensorboard", t is not None and t.tensorboard is not None), ("wandb", t is not None and t.wandb is not None)]
    missing = [name for name, on in asked if on and importlib.util.find_spec(name) is None]
    if missing:
        names = " and ".join(f"`{m}`" for m in missing)
        raise BackendError(f"`tracking` asks for {names}, not installed here; nothing was run",
                           hint="pip install 'megaspec[tracking]', or turn the tracker off in `tracking:`", code=EXIT_USAGE)


def apply_local(plan, run_dir: Path, *, progress: bool, resume: bool = False,
                announce: Callable[[], None] | None = None) -> int:
    """Run a plan here to its end, with the live progress line; the exit code its outcome implies.
    `announce` is called once the run folder and its manifest exist."""
    from ..runs.backends import local
    from ..runs.progress import ProgressDisplay

    _require_runtime()
    _require_trackers(plan)
    display = ProgressDisplay(plan.train.steps) if progress else None
    try:
        manifest = local.run(plan, run_dir, on_event=display, resume=resume, announce=announce)
    except KeyboardInterrupt as e:
        return interrupted(e, run_dir)
    finally:
        if display:
            display.close()
    print_outcome(run_dir, manifest)
    return exit_code(manifest)


def interrupted(interrupt: KeyboardInterrupt, run_dir: Path | None, *, sweep_in: Path | None = None) -> int:
    """The one line a signal ends `apply` with (never click's bare `Aborted!`), naming the manifest
    only when it was written (a sweep: where its runs' manifests are); the exit code 128 + the signal."""
    from megaspec.runtime.contract.errors import signal_of

    manifest = run_dir / MANIFEST_FILE if run_dir is not None else None
    if manifest is not None and manifest.is_file():
        said = f"manifest {manifest}"
    elif sweep_in is not None:
        said = f"the sweep stopped; `megaspec status {sweep_in}` shows where each of its runs was"
    else:
        said = "before the run folder was created; nothing was launched"
    click.echo(f"\ninterrupted: {said}", err=True)
    return signalled(signal_of(interrupt))
