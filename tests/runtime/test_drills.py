"""Failure drills: every stage of the receipt has one, a malformed one is refused, and the rank that
stopped first is named with its stage while the receipt keeps what the run completed."""

from __future__ import annotations

import json
import os
import signal

import pytest
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from megaspec.runtime.contract.clock import utc_now
from megaspec.runtime.contract.errors import CheckpointError, Interrupted, code_for
from megaspec.runtime.contract.receipt import STAGES, read_receipt
from megaspec.runtime.evidence.assemble import complete_receipt
from megaspec.runtime.launch.entry import run_plan
from megaspec.runtime.rank import drills
from megaspec.runtime.rank.outcome import LaneOutcome
from megaspec.runtime.rank.status import RankStatus

from .conftest import make_plan, timeouts_fired_ms


@pytest.mark.parametrize(("text", "problem"), [
    ("1:train", "2 fields"), ("x:train:kill", "rank `x`"), ("2:train:kill", "not one of 0..1"),
    ("1:trian:kill", "stage `trian`"), ("1:train:3:explode", "action `explode`"),
    ("1:init:3:kill", "only train and checkpoint take a step"), ("1:train:0:kill", "step `0`"),
    ("1:train:1:kill", "first-step"),
])
def test_a_malformed_drill_says_what_is_wrong(text, problem):
    with pytest.raises(drills.DrillError, match=problem) as caught:
        drills.parse(text, world_size=2)
    assert caught.value.code == "MS808" and "expected <rank>:<stage>[:<step>]" in str(caught.value)


def test_a_drill_matches_its_rank_stage_and_step_only():
    drill = drills.parse("1:checkpoint:6:kill", world_size=2)
    assert drill.matches(1, "checkpoint", 6)
    assert not drill.matches(0, "checkpoint", 6) and not drill.matches(1, "checkpoint", 3)
    assert drills.parse("0:receipt:sleep", world_size=1).matches(0, "receipt", None)


def test_a_bad_drill_fails_the_run_before_any_rank_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("MEGASPEC_FAULT", "1:checkpiont:kill")
    receipt = run_plan(make_plan(2), tmp_path / "run")
    assert (receipt["status"], receipt["error"]["code"], receipt["error"]["stage"]) == ("error", "MS808", "bootstrap")
    assert "stage `checkpiont`" in receipt["error"]["message"] and not (tmp_path / "run" / "logs").exists()


def test_a_sigterm_before_the_ranks_start_ends_interrupted_with_a_receipt(tmp_path, monkeypatch):
    """Sent from where the launcher starts its fork server: a stand-in for a SIGTERM that arrives while
    the launcher prepares (no rank has started, so nothing else can time it)."""
    from megaspec.runtime.launch import fork_server as workers

    def unhandled(*_):
        pytest.fail("the launcher let a SIGTERM through (without this handler it would kill the test run)")

    original = signal.signal(signal.SIGTERM, unhandled)
    monkeypatch.setattr(workers, "start_fork_server", lambda: os.kill(os.getpid(), signal.SIGTERM))
    try:
        with pytest.raises(Interrupted) as stopped:
            run_plan(make_plan(2), tmp_path / "run")
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, original)
    receipt = read_receipt(tmp_path / "run" / "receipt.json")
    assert stopped.value.signum == signal.SIGTERM and after is unhandled  # the handler before is restored
    assert (receipt.status, receipt.error.code, receipt.error.stage) == ("interrupted", "MS809", "bootstrap")
    assert receipt.error.message == "the launcher received SIGTERM before any rank started"


def test_a_checkpoint_save_that_lost_its_peer_is_a_symptom_not_a_checkpoint_fault():
    try:
        try:
            raise RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:1")
        except RuntimeError as exc:
            raise CheckpointError("saving step 3 failed", stage="checkpoint", step=3) from exc
    except CheckpointError as wrapped:
        assert code_for(wrapped) == "MS803"
    assert code_for(CheckpointError("saving step 3 failed: No space left on device")) == "MS806"


KILLED_RANK_1 = ChildFailedError("rank_main", {1: ProcessFailure(local_rank=1, pid=1, exitcode=-9, error_file="-")})


@pytest.mark.parametrize("ending", [KILLED_RANK_1, SignalException("SIGTERM", signal.SIGTERM)],
                         ids=["kill -9 of rank 1", "SIGTERM of the launcher"])
def test_a_run_torn_down_before_rank_0_wrote_its_receipt_keeps_the_logged_steps(tmp_path, ending):
    """Step 5 never finished; the launcher stopped rank 0 before it wrote a receipt."""
    plan = make_plan(2, steps=8)
    for rank in (0, 1):
        RankStatus(tmp_path, rank, rank).update(phase="train", last_step=4)
    events = [{"step": s, "loss": 6.0 - s, "losses": [6.0 - s]} for s in range(1, 5)]
    (tmp_path / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + '{"step": 5, "lo')
    receipt = complete_receipt(plan, tmp_path, utc_now(), LaneOutcome(), ending, node_rank=0)
    assert (receipt.error.rank, receipt.error.stage, receipt.error.step) == \
        ((1, "train", 5) if ending is KILLED_RANK_1 else (None, "train", 5))  # no rank to blame for a SIGTERM
    assert receipt.steps.completed == 4 and receipt.losses == [5.0, 4.0, 3.0, 2.0]
    assert (receipt.metrics.final_loss, receipt.metrics.min_loss) == (2.0, 2.0)


def test_a_rank_stopped_while_saving_step_n_is_at_step_n_and_completed_steps_are_the_logged_ones(tmp_path):
    """Rank 1 was killed while saving step 6; both ranks had finished step 6, but the run was torn down
    before step 6's loss was gathered across the ranks and logged (losses of steps 1..5 only)."""
    plan = make_plan(2, steps=8)
    RankStatus(tmp_path, 0, 0).update(phase="train", last_step=6)
    RankStatus(tmp_path, 1, 1).update(phase="checkpoint", last_step=6)
    events = [{"step": s, "loss": 6.0 - s, "losses": [6.0 - s]} for s in range(1, 6)]
    (tmp_path / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    receipt = complete_receipt(plan, tmp_path, utc_now(), LaneOutcome(), KILLED_RANK_1, node_rank=0)
    assert (receipt.error.rank, receipt.error.stage, receipt.error.step) == (1, "checkpoint", 6)
    assert receipt.steps.completed == len(receipt.losses) == 5


# One drill per stage, the actions spread over the stages; steps and losses kept where training ran.
STAGE_DRILLS = {"bootstrap": "1:bootstrap:sleep", "init": "1:init:raise", "compile": "1:compile:kill",
                "first-step": "1:first-step:sleep", "train": "1:train:4:kill", "checkpoint": "1:checkpoint:3:kill",
                "receipt": "1:receipt:raise", "teardown": "1:teardown:kill"}
COMPLETED_BEFORE = {"train": 3, "checkpoint": 3, "receipt": 6, "teardown": 6}


def test_every_stage_has_a_drill():
    assert tuple(STAGE_DRILLS) == STAGES


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_the_rank_that_stopped_is_named_in_every_stage(tmp_path, monkeypatch, stage):
    monkeypatch.setenv("MEGASPEC_FAULT", STAGE_DRILLS[stage])
    plan = make_plan(2, steps=6, checkpoint={"every": 3, "resume": "never"}, distributed={"init_timeout": 10, "timeout": 5},
                     plan={"checkpoint": {"dir": "ckpt"}})
    receipt = run_plan(plan, tmp_path / "run")
    if STAGE_DRILLS[stage].endswith(":sleep"):  # a stall ends on the 10 s init timeout, never the hour-long sleep
        assert timeouts_fired_ms(tmp_path / "run") == {10_000}
    # In teardown rank 0's receipt is written (ok, the fault an MS804 diagnostic), unless the launcher
    # stopped rank 0 before it wrote it (then an error naming the same rank and stage).
    if stage == "teardown" and receipt["status"] == "ok":
        named = next(d for d in receipt["diagnostics"] if d["code"] == "MS804")
    else:
        assert receipt["status"] == "error"
        named = receipt["error"]
    assert (named["rank"], named["stage"]) == (1, stage)
    assert receipt["steps"]["completed"] == COMPLETED_BEFORE.get(stage, 0)
    assert len(receipt["losses"]) == COMPLETED_BEFORE.get(stage, 0)
