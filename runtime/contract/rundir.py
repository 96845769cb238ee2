"""The run folder's layout: every name megaspec writes or reads under `runs/<run-id>/`, and the run id.

Both halves go through this module: the launcher and the ranks write these files, the compiler's
`apply`, `status`, `collect`, `logs` and `report` read them. A file's name is spelled here only.

    runs/<run-id>/
      plan.json         the Plan (`megaspec compile` writes the same bytes to `build/<name>/`)
      spec.yaml         the spec as applied, bases folded in (what `megaspec rerun` runs again)
      code/<i>/<name>/  a copy of the user's model code folder i, which spec.yaml names (`stored_spec.py`)
      manifest.json     the compiler's launch and collector state (`compiler/runs/manifest.py`)
      receipt.json      the Receipt
      progress.jsonl    rank 0's per-step record (`progress.py`)
      ranks/rank-<r>.json                          each rank's status file (`rank_status.py`)
      logs/<id>/attempt_<n>/<local rank>/          torch elastic's stdout.log, stderr.log, error.json
      comm_traces/rank_<r>                         NCCL flight-recorder dumps
      checkpoints/step-<N>/                        a checkpoint dir not on a Volume (`checkpoint_dirs.py`)
      tensorboard/, wandb/                         the trackers' files (`train/tracking.py`)
      attempts/<n>/                                an earlier attempt's ranks, logs, progress, receipt
      .launcher.claim                              the claim of the launcher training here (`claim.py`)
      .manifest.claim                              the claim of a manifest's state change (`claim.py`)
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan

PLAN_FILE = "plan.json"
SPEC_FILE = "spec.yaml"
CODE_DIR = "code"
MANIFEST_FILE = "manifest.json"
RECEIPT_FILE = "receipt.json"
PROGRESS_FILE = "progress.jsonl"
RANKS_DIR = "ranks"
LOGS_DIR = "logs"
ERROR_FILE = "error.json"  # torch elastic's, one per failed rank (`@record`)
COMM_TRACES_PREFIX = "comm_traces/rank_"  # relative to the run folder; torch appends the rank
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
ATTEMPTS_DIR = "attempts"
LAUNCHER_CLAIM = ".launcher.claim"  # held by the launcher while it trains in the folder (`claim.py`)
MANIFEST_CLAIM = ".manifest.claim"  # held for each state change of the manifest (`update_manifest`)

# What one attempt writes: moved to `attempts/<n>/` before the next one reuses the folder.
ATTEMPT_FILES = (RANKS_DIR, LOGS_DIR, PROGRESS_FILE, RECEIPT_FILE)


def run_id_of(plan: Plan, run_dir: str | Path) -> str:
    """The run's id: the Plan's, else the folder's name (a plan compiled without `apply` has none)."""
    return plan.run.run_id or Path(run_dir).name


def run_dir_in(runs_dir: str, plan: Plan) -> str:
    """A run's folder under a container's runs directory (the Modal app's): named by the run id, else by
    the plan's name, which `run_id_of` then reads back as the id."""
    return posixpath.join(runs_dir, plan.run.run_id or plan.name)


def rank_status_file(run_dir: str | Path, rank: int) -> Path:
    return Path(run_dir) / RANKS_DIR / f"rank-{rank}.json"


def rank_status_files(run_dir: str | Path) -> list[Path]:
    return sorted((Path(run_dir) / RANKS_DIR).glob("rank-*.json"))


def attempt_log_dirs(run_dir: str | Path) -> list[Path]:
    """torch elastic's `logs/<id>/attempt_<n>/` folders (unsorted: callers order them)."""
    return list((Path(run_dir) / LOGS_DIR).glob("*/attempt_*"))


def rank_log_dirs(run_dir: str | Path, local_rank: int | str = "*") -> list[Path]:
    """The log folders of one local rank (every rank with `*`), in every attempt, sorted."""
    return sorted((Path(run_dir) / LOGS_DIR).glob(f"*/attempt_*/{local_rank}"))


def error_files(run_dir: str | Path) -> list[Path]:
    return sorted((Path(run_dir) / LOGS_DIR).glob(f"*/attempt_*/*/{ERROR_FILE}"))


def archived_attempts(run_dir: str | Path) -> int:
    """How many earlier attempts `attempts/` holds (the current attempt is this number plus one)."""
    return len(list((Path(run_dir) / ATTEMPTS_DIR).glob("*")))


def archive_previous_attempt(run_dir: Path, extra: tuple[str, ...] = (), copied: tuple[str, ...] = ()) -> Path | None:
    """Move a previous attempt's files (a retry or `apply --resume` reuses the run dir), and the
    `extra` ones the caller owns, to `attempts/<n>/`: its error files stay readable and are never
    mistaken for this attempt's. The `copied` ones are copied, not moved: the caller rewrites them in
    place afterwards, so the folder never lacks one. Checkpoints and caches stay. Returns the archive
    (None: nothing to archive)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = [run_dir / name for name in (*ATTEMPT_FILES, *extra) if (run_dir / name).exists()]
    kept = [run_dir / name for name in copied if (run_dir / name).exists()]
    if not previous and not kept:
        return None
    archive = run_dir / ATTEMPTS_DIR / str(archived_attempts(run_dir) + 1)
    archive.mkdir(parents=True)
    for path in kept:
        shutil.copy2(path, archive / path.name)
    for path in previous:
        shutil.move(str(path), archive / path.name)
    return archive
