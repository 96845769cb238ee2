"""`megaspec apply TEMPLATE` and `megaspec apply DIR`: a sweep launched as one batch.

template (or a folder of specs) -> one spec file per run in `runs/<sweep-id>/specs/` -> lint every
run (any error: nothing launched, nothing left behind) -> lower and render each -> a preview table
(swept values, GPU, estimated time and cost; total and worst case) -> the cost gate (`--max-cost`:
asks on a terminal, needs `--yes` elsewhere) -> `sweep.json` with every run `planned` -> launch.
Locally the runs go one after another and a failed run does not stop the others (`--fail-fast`
does); on Modal each run is one detached call, at most `sweep.max_parallel` in flight, the rest
launched by the `collect` or `status` that sees a free slot (runs/sweep_launch.py).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from megaspec.runtime.contract.rundir import PLAN_FILE

from ..runs.manifest import BackendError, new_manifest, utc_now, write_manifest
from .run_output import EXIT_FAILED, EXIT_OK, fail, was_signalled


@dataclass(frozen=True)
class RunSource:
    spec: Path
    name: str  # carries the sweep's name
    values: dict[str, Any]
    text: str | None = None  # the spec file's text, when this command wrote it (linted without reading it back)


@dataclass(frozen=True)
class PlannedRun:
    source: RunSource
    plan: Any
    estimate: Any
    spec_text: str  # the run's spec as one file, stored in its run folder for `megaspec rerun`


def template_sources(checked, template: str, specs_dir: Path) -> list[RunSource]:
    """Expand the template and write each run's standalone spec into `specs_dir`."""
    from ..spec.expand import expand, run_files, write_runs

    runs = expand(checked.composed.written, checked.spec.name, checked.spec.sweep,  # names carry the template's
                  checked.composed.code_dir)
    texts = run_files(runs, template)
    paths = write_runs(runs, specs_dir, template, texts=texts)
    return [RunSource(p, r.name, r.values, t) for p, r, t in zip(paths, runs, texts, strict=True)]


def folder_sources(checked_runs: list, folder: Path) -> list[RunSource]:
    """A folder's specs; the swept values are the settings on which the specs differ."""
    from ..runs.compare_view import flatten
    from ..spec.expand import run_label

    flat = [{k: v for k, v in flatten(c.data or {}).items() if k != "name"} for c in checked_runs]
    keys = [k for k in dict.fromkeys(k for f in flat for k in f) if len({repr(f.get(k)) for f in flat}) > 1]
    sweep_name = _slug(folder.resolve().name)
    return [RunSource(Path(c.path), run_label(sweep_name, c.spec.name), {k: f.get(k) for k in keys})
            for c, f in zip(checked_runs, flat, strict=True)]


def _slug(text: str) -> str:
    from ..runs.run_id import slugify_name

    return slugify_name(text)


def lint_all(paths: list[Path], steps: int | None, texts: list[str | None] | None = None) -> tuple[list, str]:
    """Every run checked (with `--steps` applied; `texts`: the files' texts where this command just wrote
    them); `(checked runs, "")` or `([], every error rendered)`."""
    from ..diagnostics import has_errors
    from ..lint.check import check_spec
    from ..lint.config import load_config
    from ..lint.report import render_report
    from .prepare import steps_adjustment

    config, checked, errors = load_config(), [], []
    for path, text in zip(paths, texts or [None] * len(paths), strict=True):
        c = check_spec(path, config=config, adjust=steps_adjustment(steps), text=text)
        checked.append(c)
        if c.spec is None or has_errors(c.diagnostics):
            found = [d for d in c.diagnostics if d.is_error]
            errors.append(render_report("concise", found, texts=c.smap.texts, num_files=1))
    return ([], "".join(errors)) if errors else (checked, "")


def plan_all(checked_runs: list, sources: list[RunSource], *, target: str | None,
             steps: int | None, sweep_id: str | None = None, git_of: str | None = None) -> list[PlannedRun]:
    """Each run lowered and estimated; every run records the git revision of `git_of` (the template, or
    a file in the folder of specs), read once."""
    from megaspec.runtime.contract.cost import estimate
    from megaspec.runtime.contract.git_revision import git_revision

    from ..spec.expand import applied_text
    from .prepare import lower_checked

    git = git_revision(git_of) if git_of is not None else None
    planned = []
    for c, src in zip(checked_runs, sources, strict=True):
        plan = lower_checked(c, target=target, steps=steps, name=src.name, sweep_id=sweep_id, git=git)
        planned.append(PlannedRun(src, plan, estimate(plan), applied_text(c)))
    return planned


def preview_lines(planned: list[PlannedRun]) -> tuple[list[str], float | None, float | None]:
    """The preview table, and the (estimated, worst-case) totals in USD (None: some run has no price)."""
    from ..codegen.sweep_estimate import preview_lines as table

    return table([(p.source.name, p.source.values, p.plan, p.estimate) for p in planned])


def cost_gate(total: float | None, max_cost: float, yes: bool) -> None:
    """Over the limit (or of unknown cost): ask on a terminal, refuse elsewhere unless `--yes`."""
    if yes or (total is not None and total <= max_cost):
        return
    what = "unknown (a GPU without a list price)" if total is None else f"${total:,.2f}"
    message = f"the sweep's estimated cost {what} is above --max-cost ${max_cost:,.2f}"
    if sys.stdin.isatty() and sys.stdout.isatty():
        if click.confirm(f"{message}. Launch it anyway?", default=False):
            return
        fail("nothing was launched", "Raise --max-cost, or shrink the sweep")
    fail(f"{message}; nothing was launched", "Pass --yes to launch it anyway, or raise --max-cost")


def write_planned(sweep_dir: Path, planned: list[PlannedRun], build_dir: Path, *, source: str,
                  source_sha: str | None, matrix: dict, max_parallel: int | None, objective: dict | None):
    """Each run's app in `build_dir`, its plan, spec text and `planned` manifest, then sweep.json."""
    from megaspec.runtime.contract.files import write_text_atomic

    from ..runs.stored_spec import keep_for_rerun
    from ..runs.sweep_manifest import SweepManifest, SweepRunEntry, write_sweep
    from .prepare import build_app

    entries, stored = [], {}  # the run folder that holds a copy of each set of code folders
    for p in planned:
        run_dir, folders = sweep_dir / p.plan.run.run_id, p.plan.code_here()
        write_text_atomic(run_dir / PLAN_FILE, p.plan.to_json())
        warning = keep_for_rerun(run_dir, p.spec_text, folders, link_from=stored.setdefault(tuple(folders), run_dir))
        if warning:
            click.echo(warning, err=True)
        write_manifest(run_dir, new_manifest(p.plan, backend="local" if p.plan.target == "local" else "modal"))
        entries.append(SweepRunEntry(name=p.source.name, values=p.source.values, spec=p.source.spec.as_posix(),
                                     run_id=p.plan.run.run_id, run_dir=p.plan.run.run_id,
                                     app=build_app(p.plan, build_dir).resolve().as_posix()))  # collect may run elsewhere
    sweep = SweepManifest(sweep_id=sweep_dir.name, source=source, source_sha256=source_sha, matrix=matrix,
                          target=planned[0].plan.target, max_parallel=max_parallel, objective=objective,
                          created_at=utc_now(), runs=entries)
    write_sweep(sweep_dir, sweep)
    return sweep


def run_local(sweep_dir: Path, planned: list[tuple[str, Any, bool]], *, fail_fast: bool, progress: bool) -> int:
    """One run after another (name, plan, and whether its run directory holds an earlier attempt, archived
    before it starts again); a failure stops the rest only with `--fail-fast`."""
    from ..runs.sweep_manifest import refresh
    from .prepare import apply_local

    failed = 0
    for i, (name, plan, again) in enumerate(planned, 1):
        run_dir = sweep_dir / plan.run.run_id
        click.echo(f"[{i}/{len(planned)}] {name} -> {run_dir}")
        code = apply_local(plan, run_dir, progress=progress, resume=again)
        refresh(sweep_dir)
        if was_signalled(code):  # Ctrl-C or SIGTERM stops the sweep, not only this run
            click.echo(f"interrupted: the remaining runs stay `planned` in {sweep_dir / 'sweep.json'}; "
                       f"`megaspec apply {sweep_dir}` resumes the sweep", err=True)
            return code
        failed += code != EXIT_OK
        if code != EXIT_OK and fail_fast and i < len(planned):
            click.echo(f"--fail-fast: {len(planned) - i} run(s) not started (left `planned`)")
            break
    counts = refresh(sweep_dir).counts()
    click.echo(f"sweep {sweep_dir.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
               + f"\nsweep manifest: {sweep_dir / 'sweep.json'}\ntable and plots: megaspec report {sweep_dir}")
    return EXIT_FAILED if failed else EXIT_OK


def launch_modal(sweep_dir: Path, again: frozenset[str] = frozenset()) -> int:
    """The sweep's queued runs launched into its free slots (`again`: a resume's ended runs first put back
    to `planned`, runs/sweep_launch.py); the exit code."""
    from ..runs.sweep_launch import fill_slots

    launched = fill_slots(sweep_dir, echo=click.echo, again=again)
    sweep = launched.sweep
    waiting = sweep.counts().get("planned", 0)
    failed = f" ({len(launched.failed)} failed to start: see above)" if launched.failed else ""
    click.echo(f"sweep {sweep.sweep_id}: {len(launched.run_ids)} run(s) launched{failed}"
               + (f", {waiting} waiting `planned` (max_parallel {sweep.max_parallel})" if waiting else ""))
    click.echo(f"follow it with: megaspec collect {sweep_dir}" + (" (each collect launches runs into free slots)"
                                                                 if waiting else ""))
    return EXIT_FAILED if sweep.counts().get("error") else EXIT_OK


def apply_sweep(source: str, checked, *, target: str | None, runs_dir: Path, build_dir: Path, steps: int | None,
                yes: bool, max_cost: float, fail_fast: bool, progress: bool) -> int:
    """A template (`checked` is its lint-clean check) or a folder (`checked` is None) -> a launched sweep."""
    from ..runs.run_id import mint_run_id

    folder = checked is None
    sweep_name = _slug(Path(source).resolve().name) if folder else checked.spec.name
    sweep_dir = runs_dir / mint_run_id(sweep_name)
    runs_dir_existed = runs_dir.exists()
    try:
        planned, sweep_meta = _prepare(source, checked, sweep_dir, target=target, steps=steps)
        lines, total, _ = preview_lines(planned)
        click.echo(f"sweep {sweep_dir.name}: {len(planned)} run(s) from {source} ({planned[0].plan.target})")
        click.echo("\n".join(lines))
        cost_gate(total, max_cost, yes)
        if planned[0].plan.target == "modal":
            _doctor(source, [p.plan for p in planned])
    except BaseException:
        shutil.rmtree(sweep_dir, ignore_errors=True)  # nothing was launched: leave nothing behind
        if not runs_dir_existed and runs_dir.is_dir() and not any(runs_dir.iterdir()):
            runs_dir.rmdir()
        raise
    write_planned(sweep_dir, planned, build_dir, **sweep_meta)
    try:
        if planned[0].plan.target == "local":
            return run_local(sweep_dir, [(p.source.name, p.plan, False) for p in planned], fail_fast=fail_fast,
                             progress=progress)
        return launch_modal(sweep_dir)
    except BackendError as e:
        fail(str(e), e.hint, e.code)


def _doctor(source: str, plans: list) -> None:
    """`megaspec doctor` of the sweep's runs, once, before N image builds: a missing Secret or refused
    credentials stop the sweep here, not each run after its build."""
    from ..runs.backends.modal_client import require_credentials
    from ..runs.backends.modal_doctor import check_modal

    try:
        require_credentials(launching=True)
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    failed = [c for c in check_modal(plans, echo=lambda line: click.echo(line, err=True)) if not c.ok]
    for check in failed:
        click.echo(f"doctor: {check.line()}" + (f"\n  = help: {check.hint}" if check.hint else ""), err=True)
    if failed:
        fail(f"the sweep was not launched: {len(failed)} check(s) of what its runs need on Modal failed (above)",
             f"Fix them; `megaspec doctor {source}` checks again without launching")


def _prepare(source: str, checked, sweep_dir: Path, *, target, steps) -> tuple[list[PlannedRun], dict]:
    from ..codegen.build import spec_sha256
    from ..lint.discover import spec_files

    if checked is None:
        paths = spec_files(Path(source))
        if not paths:
            fail(f"`{source}` holds no spec files", "Pass a folder of specs (e.g. from `megaspec sweep`) or a template")
        runs, errors = lint_all(paths, steps)
        sources = folder_sources(runs, Path(source)) if runs else []
        meta = {"source": Path(source).as_posix(), "source_sha": None, "matrix": {}, "max_parallel": None,
                "objective": None}
    else:
        sources = template_sources(checked, source, sweep_dir / "specs")
        runs, errors = lint_all([s.spec for s in sources], steps, [s.text for s in sources])
        sw = checked.spec.sweep
        meta = {"source": Path(source).as_posix(), "source_sha": spec_sha256(checked.files),
                "matrix": dict(sw.matrix), "max_parallel": sw.max_parallel,
                "objective": sw.objective.model_dump() if sw.objective else None}
    if errors:
        click.echo(errors, nl=False, err=True)
        fail(f"{errors.count(': error[')} error(s) in the sweep's runs; nothing was launched",
             "Fix the template (or the specs), then apply again")
    git_of = str(sources[0].spec) if checked is None and sources else source  # a spec of the folder, or the template
    planned = plan_all(runs, sources, target=target, steps=steps, sweep_id=sweep_dir.name, git_of=git_of)
    if len({p.plan.target for p in planned}) > 1:
        fail("the folder mixes `target: local` and `target: modal` specs", "Pass --target to run them all one way")
    return planned, meta
