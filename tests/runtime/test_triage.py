"""The launcher's receipt completion, without launching: status files + exit codes -> status, error."""

from __future__ import annotations

import signal

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from megaspec.runtime.contract.clock import utc_now
from megaspec.runtime.contract.receipt import write_receipt
from megaspec.runtime.evidence.assemble import build_receipt, complete_receipt
from megaspec.runtime.rank.outcome import LaneOutcome
from megaspec.runtime.rank.status import RankStatus

from .conftest import make_plan, require_seed


def failed(rank: int, exitcode: int) -> ChildFailedError:
    return ChildFailedError("rank_main", {rank: ProcessFailure(local_rank=rank, pid=1, exitcode=exitcode,
                                                                error_file="<none>")})


def write_status(run_dir, rank: int, phase: str, last_step: int = 0) -> None:
    status = RankStatus(run_dir, rank, rank)
    status.enter(phase, last_step=last_step)


def test_receipt_then_nonzero_exit_is_a_teardown_fault_not_a_failure(tmp_path):
    plan, started = make_plan(2), utc_now()
    for rank in (0, 1):
        write_status(tmp_path, rank, "done", 6)
    write_receipt(tmp_path / "receipt.json", build_receipt(plan, tmp_path, started, LaneOutcome(losses=[1.0]), [],
                                                           status="ok"))
    receipt = complete_receipt(plan, tmp_path, started, LaneOutcome(), failed(1, -6), node_rank=0)
    assert (receipt.status, receipt.error) == ("ok", None)
    assert [(d.code, d.rank, d.stage) for d in receipt.diagnostics] == [("MS804", 1, "teardown")]


def test_a_rank_that_never_wrote_a_status_is_blamed_for_the_hang(tmp_path):
    plan, started = make_plan(2), utc_now()
    waiter = RankStatus(tmp_path, 0, 0)
    waiter.enter("first-step")
    waiter.update(error={"code": "MS803", "stage": "first-step", "step": 1, "failed_ns": 1,
                         "message": "RuntimeError: [gloo] Timed out waiting 30000ms for recv"})
    receipt = complete_receipt(plan, tmp_path, started, LaneOutcome(), failed(0, 1), node_rank=0)
    assert (receipt.status, receipt.error.rank, receipt.error.stage, receipt.error.code) == \
        ("error", 1, "bootstrap", "MS803")


def test_a_rank_whose_peer_lost_its_connection_to_it_died_whichever_exit_the_launcher_saw_first(tmp_path):
    """torch elastic reports only the first exit it notices: here the waiter's (code 1), not the killed
    rank's -9. The waiter's error says the connection was closed: rank 1 died, it did not stall."""
    plan, started = make_plan(2, steps=8), utc_now()
    write_status(tmp_path, 1, "train", 4)
    waiter = RankStatus(tmp_path, 0, 0)
    waiter.enter("train", last_step=4)
    waiter.update(error={"code": "MS803", "stage": "train", "step": 5, "failed_ns": 1,
                         "message": "RuntimeError: [gloo/transport/tcp/pair.cc:553] Connection closed by peer"})
    receipt = complete_receipt(plan, tmp_path, started, LaneOutcome(), failed(0, 1), node_rank=0)
    error = receipt.error
    assert (error.code, error.rank, error.stage, error.step) == ("MS802", 1, "train", 5)
    assert "without a Python error" in error.message and "rank 0 lost its connection" in error.message


def test_a_stale_receipt_from_an_earlier_attempt_is_not_reused(tmp_path):
    plan = make_plan(2)
    write_receipt(tmp_path / "receipt.json", build_receipt(plan, tmp_path, "2020-01-01T00:00:00.000000Z",
                                                           LaneOutcome(losses=[9.0]), [], status="ok"))
    receipt = complete_receipt(plan, tmp_path, utc_now(), LaneOutcome(), RuntimeError("no rendezvous"), node_rank=0)
    assert (receipt.status, receipt.error.code, receipt.losses) == ("error", "MS808", [])


def test_a_ctrl_c_before_any_rank_started_says_so(tmp_path):
    receipt = complete_receipt(make_plan(2), tmp_path, utc_now(), LaneOutcome(), KeyboardInterrupt(), node_rank=0)
    error = receipt.error
    assert (receipt.status, error.code, error.rank, error.stage) == ("interrupted", "MS809", None, "bootstrap")
    assert error.message == "the launcher received SIGINT before any rank started"


def test_a_signalled_launcher_names_the_signal_and_where_each_rank_was(tmp_path):
    plan, started = make_plan(2, steps=8), utc_now()
    write_status(tmp_path, 0, "checkpoint", 6)
    write_status(tmp_path, 1, "train", 5)
    receipt = complete_receipt(plan, tmp_path, started, LaneOutcome(), SignalException("SIGTERM", signal.SIGTERM),
                               node_rank=0)
    error = receipt.error
    assert (receipt.status, error.code, error.rank, error.stage, error.step) == \
        ("interrupted", "MS809", None, "train", 6)  # the stage and step of the rank furthest behind
    assert error.message == ("the launcher received SIGTERM and stopped the ranks: rank 0 in `checkpoint` after "
                             "step 6, rank 1 in `train` after step 5")


def test_a_rank_stopped_by_a_signal_sent_to_it_alone_is_named_and_the_run_is_interrupted(tmp_path):
    plan, started = make_plan(2, steps=8), utc_now()
    write_status(tmp_path, 0, "train", 3)
    write_status(tmp_path, 1, "train", 3)
    receipt = complete_receipt(plan, tmp_path, started, LaneOutcome(), failed(1, -signal.SIGTERM), node_rank=0)
    error = receipt.error
    assert (receipt.status, error.code, error.rank, error.stage, error.step) == ("interrupted", "MS809", 1, "train", 4)
    assert error.message == "rank 1 was stopped by SIGTERM from outside the launcher, in `train` after step 3"


def test_require_seed_without_a_seed_fails_before_any_rank_starts(tmp_path):
    from megaspec.runtime.launch.entry import run_plan

    plan = make_plan(2, **require_seed(tmp_path / "no-seed"))
    receipt = run_plan(plan, tmp_path / "run")
    assert (receipt["status"], receipt["error"]["code"], receipt["error"]["stage"]) == ("error", "MS807", "bootstrap")
    assert receipt["per_rank"] == [] and not (tmp_path / "run" / "logs").exists()


def test_a_failed_verdict_is_a_diagnostic_and_the_run_still_completed(tmp_path):
    plan, started = make_plan(2, lane="validate", validate={"finite_loss": True, "max_final_loss": 1.0,
                                                            "reference_receipt": None, "loss_rtol": 0.0}), utc_now()
    write_receipt(tmp_path / "receipt.json", build_receipt(plan, tmp_path, started, LaneOutcome(losses=[5.0, 4.0]), [],
                                                           status="ok"))
    receipt = complete_receipt(plan, tmp_path, started, LaneOutcome(), None, node_rank=0)
    assert (receipt.status, receipt.verdict.passed, receipt.verdict.checks["final_loss_below_max"]) == \
        ("ok", False, False)
    assert [(d.code, d.rule) for d in receipt.diagnostics] == [("MS810", "validation-failed")]


def test_a_retry_in_the_same_run_dir_keeps_the_previous_attempt(tmp_path):
    from megaspec.runtime.launch.entry import run_plan

    plan = make_plan(2, **require_seed(tmp_path / "no-seed"))
    run_plan(plan, tmp_path / "run")
    run_plan(plan, tmp_path / "run")
    assert (tmp_path / "run" / "attempts" / "1" / "receipt.json").is_file()
    assert (tmp_path / "run" / "receipt.json").is_file()
