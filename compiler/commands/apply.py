"""`megaspec apply`, `megaspec collect`, `megaspec receipts`: from a checked spec to a durable receipt.

apply: check_spec (errors stop here) -> lower (the target from `--target`, else the spec's) ->
render into `build/<name>/` -> backend. Local runs finish in this process and end with a
summary; modal runs detach and are finished later by `collect`, which polls once per call and
is safe to repeat. `receipts show` prints a receipt for people, `receipts list` one line a run.
Exit codes: 0 ok (or detached / still running), 1 a failed run or a user mistake, 2 usage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click

from ..manifest import MANIFEST_FILE, RECEIPT_FILE, BackendError, Manifest, read_manifest

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _fail(message: str, hint: str | None = None, code: int = EXIT_FAILED):
    """Print a user-facing problem the way diagnostics look (`error: ...` / `= help: ...`) and exit."""
    click.echo(f"error: {message}" + (f"\n  = help: {hint}" if hint else ""), err=True)
    raise click.exceptions.Exit(code)


def _checked_spec(spec_path: str):
    """Lint the spec; print its problems; stop on errors (apply never launches a bad spec)."""
    from ..config import load_config
    from ..diagnostics import has_errors
    from ..lint import check_spec
    from ..report import render_report

    checked = check_spec(spec_path, config=load_config())
    if checked.diagnostics:
        click.echo(render_report("concise", checked.diagnostics, texts=checked.smap.texts, num_files=1), err=True,
                   nl=False)
    if has_errors(checked.diagnostics) or checked.spec is None:
        _fail(f"`{spec_path}` has errors; nothing was launched", "Fix them, then `megaspec lint` it again")
    return checked


def _with_steps(spec, steps: int | None):
    """`--steps N` shortens (or lengthens) a run; warmup shrinks so at least one step is measured.

    Step 1 is always excluded, then `warmup_steps`: N steps measure N - 1 - warmup of them.
    """
    if steps is None:
        return spec
    warmup = min(spec.train.warmup_steps, max(steps - 2, 0))
    train = spec.train.model_copy(update={"steps": steps, "warmup_steps": warmup})
    return spec.model_copy(update={"train": train})


def compile_plan(spec_path: str, *, target: str | None, steps: int | None, build_dir: Path):
    """Spec file -> (Plan with a fresh run id, the generated app.py path)."""
    from ..lower import lower
    from ..render import APP_FILE, render, write_build
    from ..runid import mint_run_id
    from .compile import origins_of

    checked = _checked_spec(spec_path)
    spec = _with_steps(checked.spec, steps)
    origins = origins_of(checked)  # the same origins `megaspec compile` records
    if steps is not None:
        origins["train.steps"] = "command line (--steps)"
    plan = lower(spec, spec_path=Path(spec_path).as_posix(), origins=origins, target=target,
                 spec_sha256=hashlib.sha256(Path(spec_path).read_bytes()).hexdigest(),
                 run_id=mint_run_id(spec.name))
    return plan, write_build(render(plan), build_dir, plan.name) / APP_FILE


def _apply_local(plan, run_dir: Path, *, progress: bool) -> int:
    from ..backends import local
    from ..progress import ProgressDisplay

    display = ProgressDisplay(plan.train.steps) if progress else None
    try:
        manifest = local.run(plan, run_dir, on_event=display)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: manifest {run_dir / MANIFEST_FILE}", err=True)
        return EXIT_INTERRUPTED
    finally:
        if display:
            display.close()
    _print_outcome(run_dir, manifest)
    return {"ok": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(manifest.state, EXIT_FAILED)


def _apply_modal(plan, app_py: Path, run_dir: Path) -> int:
    from ..backends import modal as modal_backend

    manifest = modal_backend.launch(plan, app_py, run_dir, echo=click.echo)
    if manifest.state == "error":
        _print_outcome(run_dir, manifest)
        return EXIT_FAILED
    click.echo(f"state: {manifest.state}   manifest: {run_dir / MANIFEST_FILE}")
    click.echo(f"collect it later with: megaspec collect {run_dir}")
    return EXIT_OK


def _print_outcome(run_dir: Path, manifest: Manifest) -> None:
    """The end-of-run summary from the receipt, or the manifest's typed error when there is none."""
    from megaspec.runtime.receipt import read_receipt

    from ..receipt_view import MANIFEST_TRIAGE, format_summary

    if manifest.receipt:
        path = run_dir / manifest.receipt
        click.echo(format_summary(read_receipt(path), str(path)), nl=False)
    if manifest.error and not manifest.receipt:
        e = manifest.error
        click.echo(f"status: {manifest.state}\nerror[{e.stage}]: {e.message}\n"
                   f"  = look first at: {MANIFEST_TRIAGE[e.stage]}\nmanifest: {run_dir / MANIFEST_FILE}")
    for note in manifest.notes:
        click.echo(f"note: {note}")


@click.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--target", type=click.Choice(["local", "modal"]), help="Override the spec's `target`.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where runs/<run-id>/ (manifest, plan, receipt, logs) is written.")
@click.option("--build-dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Where the generated app goes (build/<name>/app.py).")
@click.option("--steps", type=click.IntRange(min=1), help="Override `train.steps` for this run.")
@click.option("--no-progress", is_flag=True, help="No live progress line (local runs).")
def apply(spec: str, target: str | None, runs_dir: str, build_dir: str, steps: int | None, no_progress: bool) -> None:
    """Compile SPEC and run it: locally to a receipt, or on Modal, detached, to `collect` later."""
    plan, app_py = compile_plan(spec, target=target, steps=steps, build_dir=Path(build_dir))
    run_dir = Path(runs_dir) / plan.run.run_id
    kind = f"{plan.distributed.world_size} {plan.distributed.device} rank(s)"
    click.echo(f"apply: {plan.name} -> {run_dir} ({plan.target}, {kind}{', REHEARSAL' if plan.run.rehearsal else ''})")
    try:
        if plan.target == "local":
            code = _apply_local(plan, run_dir, progress=not no_progress)
        else:
            code = _apply_modal(plan, app_py, run_dir)
    except BackendError as e:
        _fail(str(e), e.hint)
    raise click.exceptions.Exit(code)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def collect(run_dir: str) -> None:
    """Poll a detached Modal run once and advance its manifest; safe to repeat."""
    from ..backends import modal as modal_backend

    path = Path(run_dir)
    _require_manifest(path)
    try:
        manifest = modal_backend.collect(path)
    except BackendError as e:
        _fail(str(e), e.hint)
    if manifest.is_terminal:
        _print_outcome(path, manifest)
        raise click.exceptions.Exit(EXIT_OK if manifest.state == "ok" else EXIT_FAILED)
    click.echo(f"state: {manifest.state} (polled {manifest.last_polled_at}); run `megaspec collect {path}` again later")
    for note in manifest.notes:
        click.echo(f"note: {note}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def cancel(run_dir: str) -> None:
    """Cancel a detached Modal run: stop the call, terminate its containers, end the manifest `interrupted`."""
    from ..backends import modal as modal_backend

    path = Path(run_dir)
    before = _require_manifest(path)
    try:
        manifest = modal_backend.cancel(path)
    except BackendError as e:
        _fail(str(e), e.hint)
    if before.is_terminal:
        click.echo(f"{manifest.run_id} already ended `{manifest.state}`; nothing to cancel")
    else:
        click.echo(f"cancelled {manifest.run_id} ({manifest.modal.function_call_id}); state: {manifest.state}")


def _require_manifest(run_dir: Path) -> Manifest:
    if not (run_dir / MANIFEST_FILE).is_file():
        _fail(f"`{run_dir}` is not a run directory (no {MANIFEST_FILE})", "Pass `runs/<run-id>` as printed by apply")
    try:
        return read_manifest(run_dir)
    except (ValueError, OSError) as e:
        _fail(f"cannot read the manifest: {e}", "It was written by another megaspec version, or edited by hand")


@click.group()
def receipts() -> None:
    """Read run receipts: `show` one, `list` a runs directory."""


@receipts.command("show")
@click.argument("path", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the receipt JSON as stored.")
def show(path: str, as_json: bool) -> None:
    """Print the receipt of PATH (a run directory or a receipt.json) for people."""
    from megaspec.runtime.receipt import read_receipt

    from ..receipt_view import format_receipt

    receipt_path = Path(path) / RECEIPT_FILE if Path(path).is_dir() else Path(path)
    if not receipt_path.is_file():
        state = _require_manifest(Path(path)).state if Path(path).is_dir() else "unknown"
        _fail(f"`{path}` has no receipt yet (state: {state})", f"Run `megaspec collect {path}` for a Modal run")
    try:
        receipt = read_receipt(receipt_path)
    except ValueError as e:
        _fail(f"`{receipt_path}` is not a valid receipt: {str(e).splitlines()[0]}")
    click.echo(receipt_path.read_text(encoding="utf-8") if as_json else format_receipt(receipt), nl=False)


@receipts.command("list")
@click.argument("runs_dir", default="runs", type=click.Path(file_okay=False))
def list_runs(runs_dir: str) -> None:
    """One line per run under RUNS_DIR (oldest first: run ids sort by launch time)."""
    from megaspec.runtime.receipt import read_receipt

    from ..receipt_view import format_run_line

    manifest_paths = sorted(Path(runs_dir).glob(f"*/{MANIFEST_FILE}"))
    if not manifest_paths:
        click.echo(f"no runs under `{runs_dir}`", err=True)
    for manifest_path in manifest_paths:
        try:
            manifest = read_manifest(manifest_path)
            receipt_path = manifest_path.parent / RECEIPT_FILE
            receipt = read_receipt(receipt_path) if receipt_path.is_file() else None
        except (ValueError, OSError, json.JSONDecodeError) as e:
            click.echo(f"{manifest_path.parent.name:<44} unreadable: {str(e).splitlines()[0]}")
            continue
        click.echo(format_run_line(manifest, receipt))


COMMANDS = [apply, collect, cancel, receipts]
