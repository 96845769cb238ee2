"""Trackers mirror progress.jsonl: TensorBoard event files read back with TensorBoard's own reader
(EventAccumulator), a real offline W&B run read back with wandb's own reader of its `.wandb` file
(`wandb.sdk.internal.datastore`); the receipt names each tracker's run only when its files exist."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from megaspec.runtime.contract.progress import read_events, read_record
from megaspec.runtime.contract.receipt import read_receipt
from megaspec.runtime.train import tracking
from tests.conftest import run_megaspec, tiny_cpu_spec

from .conftest import make_plan

# What ProgressLog writes with log_every 2: each event carries the losses since the previous one.
EVENTS = [{"step": 2, "loss": 5.25, "losses": [5.5, 5.25], "tokens_per_s": 200.0, "eta_s": 1.0},
          {"resumed_from": 2, "losses": [5.5, 5.25]},  # a resume marker adds nothing
          {"step": 4, "loss": 4.75, "losses": [5.0, 4.75], "tokens_per_s": 400.0, "eta_s": 0.0}]


def read_scalars(log_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def read_wandb(run_folder: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The run record and the history rows of an offline W&B run, through wandb's own reader."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    (wandb_file,) = run_folder.glob("run-*.wandb")
    store.open_for_scan(str(wandb_file))
    run, rows = None, []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "run":
            run = record.run
        elif record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return run, rows


def read_wandb_summary(run_folder: Path) -> dict[str, Any]:
    """The summary an offline W&B run recorded (its `summary` records, in order), through wandb's reader."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    store = datastore.DataStore()
    (wandb_file,) = run_folder.glob("run-*.wandb")
    store.open_for_scan(str(wandb_file))
    summary: dict[str, Any] = {}
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "summary":
            summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.summary.update})
    return summary


def wandb_losses(rows: list[dict[str, Any]]) -> list[tuple[int, float]]:
    return [(r["_step"], r["train/loss"]) for r in rows]


@pytest.fixture
def wandb_env(monkeypatch, tmp_path) -> Path:
    """A home and a temp folder of its own (to show nothing is written there: another test worker's wandb
    writes to the shared /tmp meanwhile) and the WANDB_* variables the mirror sets, restored."""
    pytest.importorskip("wandb", reason="megaspec[tracking] (in the `test` extra) installs wandb")
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the megaspec processes a test starts
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # this one
    for var in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, str(home))
    for var in [*tracking.WANDB_DIRS, "WANDB_ERROR_REPORTING", "WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR"]:
        monkeypatch.delenv(var, raising=False)
    return home


def test_mirror_writes_what_tensorboard_reads_back(tmp_path):
    plan = make_plan(tracking={"tensorboard": True})
    with tracking.mirrored(plan, tmp_path, True) as (mirror,):
        for event in EVENTS:
            mirror.log(event)
    log_dir = tmp_path / "tensorboard"
    assert read_scalars(log_dir, "train/loss") == [(1, 5.5), (2, 5.25), (3, 5.0), (4, 4.75)]
    assert read_scalars(log_dir, "train/tokens_per_s") == [(2, 200.0), (4, 400.0)]
    event_file = tracking.report(plan, tmp_path).tensorboard.event_file
    assert event_file.startswith("tensorboard/events.out.tfevents.") and (tmp_path / event_file).is_file()


def test_a_folder_outside_the_run_gets_one_subfolder_per_run(tmp_path):
    plan = make_plan(tracking={"tensorboard": True, "tensorboard_dir": str(tmp_path / "vol")},
                     plan={"run": {"run_id": "r-1"}})
    run_dir = tmp_path / "run"
    assert tracking.tensorboard_dir(plan, run_dir) == tmp_path / "vol" / "r-1"
    assert tracking.report(plan, run_dir).tensorboard is None  # nothing written yet
    with tracking.mirrored(plan, run_dir, True) as (mirror,):
        mirror.log(EVENTS[0])
    event_file = Path(tracking.report(plan, run_dir).tensorboard.event_file)
    assert event_file.is_absolute() and event_file.parent == tmp_path / "vol" / "r-1"


def test_tracking_off_is_not_in_the_plan_json_or_its_hash():
    off, on = make_plan(), make_plan(tracking={"tensorboard": True})
    assert "tracking" not in json.loads(off.to_json()) and off.sha256() != on.sha256()
    assert tracking.open_mirrors(off, Path("unused")) == [] and tracking.report(off, Path("unused")) is None


def test_wandb_logs_offline_into_the_run_dir_what_progress_logs(tmp_path, wandb_env):
    plan = make_plan(tracking={"wandb": {"project": "sweeps", "entity": "team"}},
                     plan={"run": {"run_id": "tiny-cpu-lr0-001-20261201-101010-abcd", "sweep_id": "tiny-20261201"}})
    assert plan.tracking.wandb.mode == "offline"  # a local run: no key, no network
    run_dir = tmp_path / "run"
    with tracking.mirrored(plan, run_dir, True) as (mirror,):
        for event in EVENTS:
            mirror.log(event)
    got = tracking.report(plan, run_dir).wandb
    assert (got.run_id, got.project, got.entity, got.group, got.mode) == (
        "tiny-cpu-lr0-001-20261201-101010-abcd", "sweeps", "team", "tiny-20261201", "offline")
    run, rows = read_wandb(run_dir / got.dir)
    assert (run.run_id, run.project, run.run_group) == (got.run_id, "sweeps", "tiny-20261201")  # the sweep's group
    assert wandb_losses(rows) == [(1, 5.5), (2, 5.25), (3, 5.0), (4, 4.75)]
    assert [(r["_step"], r["train/tokens_per_s"]) for r in rows if "train/tokens_per_s" in r] == [(2, 200.0), (4, 400.0)]
    assert list(wandb_env.iterdir()) == []  # ~/.cache/wandb, ~/.config/wandb: nothing
    assert list(Path(tempfile.gettempdir()).glob(f"wandb-{os.getpid()}-*")) == []  # the service's socket folder


def test_a_wandb_run_that_does_not_finish_does_not_hold_up_the_receipt(tmp_path, wandb_env, monkeypatch, capsys):
    plan = make_plan(tracking={"wandb": {"project": "sweeps"}})
    monkeypatch.setattr(tracking, "FINISH_TIMEOUT_S", 0.2)
    release = threading.Event()
    with tracking.mirrored(plan, tmp_path, True) as (mirror,):
        finish = mirror._finish
        # A fake, as no real part can answer here: an online W&B that stopped answering mid-upload is a
        # finish that does not return.
        mirror._finish = lambda failed: release.wait()
        mirror.log(EVENTS[0])
    assert (f"tracking.wandb did not finish within 0.2 s; the receipt goes on (`wandb sync {mirror.folder}` "
            "uploads it)") in capsys.readouterr().out
    release.set()
    finish(False)  # the real one, so this test leaves no service behind
    assert tracking.report(plan, tmp_path).wandb.dir == mirror.folder.relative_to(tmp_path).as_posix()


def test_wandb_online_without_its_key_says_which_secret_and_the_run_goes_on(tmp_path, wandb_env, capsys):
    plan = make_plan(tracking={"wandb": {"project": "sweeps", "secret": "team-wandb"}},
                     plan={"tracking": {"wandb": {"mode": "online"}}})  # as on Modal
    with tracking.mirrored(plan, tmp_path, True) as mirrors:
        assert mirrors == []
    assert ("tracking.wandb is on but WANDB_API_KEY is not set: the Modal Secret `team-wandb` must hold it"
            in capsys.readouterr().out)
    assert tracking.report(plan, tmp_path).wandb is None and not (tmp_path / "wandb").exists()


SPEC = tiny_cpu_spec("tiny-tracked", "tracking: {tensorboard: true, wandb: {project: megaspec-tests}}")


@pytest.mark.slow
def test_a_local_run_mirrors_progress_to_tensorboard_and_wandb(tmp_path, wandb_env):
    (tmp_path / "t.yaml").write_text(SPEC)
    temp_before = set(Path(tempfile.gettempdir()).glob("*wandb*"))
    done = run_megaspec("apply", "t.yaml", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    losses = read_record(run_dir).losses
    receipt = read_receipt(run_dir / "receipt.json")
    assert receipt.tracking.tensorboard.event_file.startswith("tensorboard/events.out.tfevents.")
    scalars = read_scalars(run_dir / "tensorboard", "train/loss")
    assert [s for s, _ in scalars] == [1, 2, 3, 4]
    assert [v for _, v in scalars] == pytest.approx(losses, rel=1e-6) == receipt.losses  # float32 in events
    wandb_run = receipt.tracking.wandb
    assert (wandb_run.run_id, wandb_run.project, wandb_run.mode) == (run_dir.name, "megaspec-tests", "offline")
    _, rows = read_wandb(run_dir / wandb_run.dir)
    assert wandb_losses(rows) == list(enumerate(losses, 1))  # the same float64 numbers as progress.jsonl
    logged = [e for e in read_events(run_dir / "progress.jsonl")[0] if "step" in e]
    assert [(r["_step"], r["train/tokens_per_s"]) for r in rows if "train/tokens_per_s" in r] == [
        (e["step"], e["tokens_per_s"]) for e in logged]
    assert list(wandb_env.iterdir()) == []  # every file wandb wrote is in the run dir: none in the home
    assert set(Path(tempfile.gettempdir()).glob("*wandb*")) == temp_before  # none left in /tmp


def test_the_trackers_summaries_are_the_receipts_numbers_not_the_last_step(tmp_path, wandb_env):
    """W&B kept the last step's tokens/s (400 here) as the run's; the receipt says 333. TensorBoard gets
    the run's settings as hparams with the receipt's numbers as their metrics."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    from megaspec.runtime.rank.outcome import LaneOutcome

    plan = make_plan(tracking={"tensorboard": True, "wandb": {"project": "sweeps"}}, train={"lr": 2e-3},
                     plan={"run": {"run_id": "r-summary"}})
    outcome = LaneOutcome(losses=[5.5, 5.25, 5.0, 4.75], metrics={"tokens_per_s": 333.0, "step_time_p50_s": 0.1})
    run_dir = tmp_path / "run"
    with tracking.mirrored(plan, run_dir, True) as mirrors:
        for event in EVENTS:
            for mirror in mirrors:
                mirror.log(event)
        tracking.summarize(mirrors, plan, outcome)
    got = tracking.report(plan, run_dir).wandb
    summary = read_wandb_summary(run_dir / got.dir)
    assert (summary["train/tokens_per_s"], summary["receipt/tokens_per_s"]) == (333.0, 333.0)
    assert (summary["train/loss"], summary["receipt/final_loss"], summary["receipt/min_loss"]) == (4.75, 4.75, 4.75)
    assert read_scalars(run_dir / "tensorboard", "receipt/tokens_per_s") == [(6, 333.0)]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["train.lr"].number_value == 2e-3 and hparams["world_size"].number_value == 2
