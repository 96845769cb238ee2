"""`megaspec rerun RUN_DIR`: a past run run again, exactly, as a new run that points at it.

RUN_DIR's spec.yaml (the spec as applied, bases folded in; its `model.code` names the copy of the code
in RUN_DIR, `runs/stored_spec.py`) -> lint (with the `--steps` the run was applied with) -> the code's
sha256 checked against the run's, and a prepared data folder's corpus and tokenizer against its receipt -> lower with its `--target`, its name, and `rerun_of` = its run id -> the backend, as
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
        ran = read_plan(run_dir / PLAN_FILE)
    except (OSError, ValueError) as e:
        fail(f"cannot read `{run_dir / PLAN_FILE}`: {str(e).splitlines()[0]}", "Apply its spec again")
    steps, target = ran.run.flags.get("steps"), ran.run.flags.get("target")
    try:
        with launcher_signals():
            checked = _checked_spec(str(run_dir / SPEC_FILE), steps if isinstance(steps, int) else None)
            _require_same_code(checked, ran, run_dir)
            _require_same_data(ran, run_dir)
            raise click.exceptions.Exit(apply_one(
                checked, target=target if isinstance(target, str) else None, runs_dir=runs_dir, build_dir=out_dir,
                steps=steps if isinstance(steps, int) else None, progress=not no_progress, name=original.name,
                rerun_of=original.run_id, git=(ran.run.git_sha, ran.run.git_dirty)))  # the code it runs is that run's
    except KeyboardInterrupt as e:
        raise click.exceptions.Exit(interrupted(e, None)) from None


def _require_same_code(checked, ran, run_dir: Path) -> None:
    """The model code spec.yaml names (the run folder's copy, or the original folders when too large to
    copy) must be the code the run ran: its sha256 is the plan's, or nothing is launched."""
    from megaspec.runtime.contract.user_code import code_folders, code_sha256

    if ran.model.user is None:
        return
    folders = code_folders(checked.composed.code_dir, checked.spec.model.code)
    now, then = code_sha256(folders), ran.model.user.code_sha256
    if now != then:
        fail(f"the model code `{run_dir / SPEC_FILE}` names ({', '.join(map(str, folders))}) is not the code the run "
             f"ran: sha256 {now[:12]}, the run's {then[:12]}",
             f"Restore that code (the run's git revision is in its {PLAN_FILE}), or apply the spec again as a new "
             "experiment")


def _require_same_data(ran, run_dir: Path) -> None:
    """A prepared data folder (`megaspec data prepare`) readable here must still hold the corpus and tokenizer
    the run's receipt names; one on a Volume, or raw shards, are not checked here (the receipt says what
    the rerun read)."""
    from megaspec.runtime.contract.files import UnreadableFile
    from megaspec.runtime.contract.receipt import read_receipt
    from megaspec.runtime.contract.rundir import RECEIPT_FILE
    from megaspec.runtime.contract.shards import prepared_folder, read_shard_manifest

    try:
        data = read_receipt(run_dir / RECEIPT_FILE).data
    except (OSError, ValueError):
        return  # no receipt (a run that never started): nothing recorded to check against
    folder = prepared_folder(data.path) if data is not None and data.corpus_sha256 and data.path else None
    if folder is None:
        return
    try:
        now = read_shard_manifest(folder)
    except (OSError, UnreadableFile, ValueError) as e:
        fail(f"cannot read the data folder `{folder}` the run read: {str(e).splitlines()[0]}",
             "Prepare it again (`megaspec data prepare`) with the run's corpus and tokenizer")
    if (now.corpus_sha256, now.tokenizer.sha256) != (data.corpus_sha256, data.tokenizer_sha256):
        fail(f"the data at `{folder}` is not the data the run read: corpus sha256 {now.corpus_sha256[:12]}, "
             f"the run's {data.corpus_sha256[:12]}; tokenizer {now.tokenizer.name}, the run's {data.tokenizer}",
             "Prepare the run's corpus again into that folder, or apply the spec again as a new experiment")


COMMANDS = [rerun]
