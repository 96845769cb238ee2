"""TensorBoard mirror of progress.jsonl: written by torch's SummaryWriter, read back with TensorBoard's
own reader (EventAccumulator), and named in the receipt only when event files exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from megaspec.runtime import tracking
from megaspec.runtime.progress import read_record
from megaspec.runtime.receipt import read_receipt
from tests.conftest import run_megaspec, tiny_cpu_spec

from .conftest import make_plan


def read_scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_mirror_writes_what_tensorboard_reads_back(tmp_path):
    plan = make_plan(tracking={"tensorboard": True})
    (mirror,) = tracking.open_mirrors(plan, tmp_path)
    # what ProgressLog writes with log_every 2: each event carries the losses since the previous one
    mirror.log({"step": 2, "loss": 5.25, "losses": [5.5, 5.25], "tokens_per_s": 200.0, "eta_s": 1.0})
    mirror.log({"resumed_from": 2, "losses": [5.5, 5.25]})  # a resume marker adds nothing
    mirror.log({"step": 4, "loss": 4.75, "losses": [5.0, 4.75], "tokens_per_s": 400.0, "eta_s": 0.0})
    log_dir = tmp_path / "tensorboard"
    assert read_scalars(log_dir, "train/loss") == [(1, 5.5), (2, 5.25), (3, 5.0), (4, 4.75)]
    assert read_scalars(log_dir, "train/tokens_per_s") == [(2, 200.0), (4, 400.0)]
    assert tracking.report(plan, tmp_path).tensorboard_dir == str(log_dir)


def test_a_folder_outside_the_run_gets_one_subfolder_per_run(tmp_path):
    plan = make_plan(tracking={"tensorboard": True, "tensorboard_dir": str(tmp_path / "vol")},
                     plan={"run": {"run_id": "r-1"}})
    assert tracking.tensorboard_dir(plan, tmp_path / "run") == tmp_path / "vol" / "r-1"
    assert tracking.report(plan, tmp_path / "run").tensorboard_dir is None  # nothing written yet


def test_tracking_off_is_not_in_the_plan_json_or_its_hash():
    off, on = make_plan(), make_plan(tracking={"tensorboard": True})
    assert "tracking" not in json.loads(off.to_json()) and off.comparison_hash() != on.comparison_hash()
    assert tracking.open_mirrors(off, Path("unused")) == [] and tracking.report(off, Path("unused")) is None


SPEC = tiny_cpu_spec("tiny-tracked", "tracking: {tensorboard: true}")


@pytest.mark.slow
def test_a_local_run_mirrors_progress_to_tensorboard(tmp_path):
    (tmp_path / "t.yaml").write_text(SPEC)
    done = run_megaspec("apply", "t.yaml", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    losses = read_record(run_dir).losses
    receipt = read_receipt(run_dir / "receipt.json")
    assert receipt.tracking.tensorboard_dir == f"runs/{run_dir.name}/tensorboard"  # as the run dir was given
    scalars = read_scalars(run_dir / "tensorboard", "train/loss")
    assert [s for s, _ in scalars] == [1, 2, 3, 4]
    assert [v for _, v in scalars] == pytest.approx(losses, rel=1e-6) == receipt.losses  # float32 in events
