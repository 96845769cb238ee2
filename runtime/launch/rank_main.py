"""The life of one rank: hardened env, process group, the lane, rank 0's receipt, clean teardown.

`rank_main` is what the elastic launcher runs in every worker process (`@record`: a failing rank
writes its own error.json, and its typed error goes to its status file first).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from ..contract.errors import code_for, failure_message, storage_error
from ..contract.files import release_reserve
from ..contract.plan import Plan
from ..contract.rank_status import RankError, RankState
from ..contract.receipt import STAGES, BenchReport, ModelReport, RunError, write_receipt
from ..contract.rundir import RECEIPT_FILE
from ..evidence.assemble import build_receipt
from ..rank.outcome import LaneOutcome
from ..rank.process_group import Rank, gather_json, init_distributed, teardown
from ..rank.provenance import device_name, observed_devices
from ..rank.status import RankStatus
from ..state import cachestate
from ..train.bench import run_bench
from ..train.loop import run_training
from ..train.user_model import UserModel, prepare


@record
def rank_main(plan_json: str, run_dir_str: str, seeded: bool, started_at: str) -> int:
    """One rank: init, run the lane, rank 0 writes the receipt, then a clean teardown."""
    plan, run_dir = Plan.from_json(plan_json), Path(run_dir_str)
    status = RankStatus(run_dir, int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]))
    status.enter("bootstrap")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cachestate.cache_dir_for(plan, run_dir))
    outcome = LaneOutcome()
    try:
        user = _user_model(plan, outcome)  # before any collective: a broken model fails here, on every rank
        r = init_distributed(plan, run_dir)
        status.update(device=device_name(r.device), observed_devices=observed_devices() if r.is_main else None)
        _run_lane(plan, r, status, run_dir, seeded, outcome, user)
        status.enter("receipt")
        per_rank = [RankState.model_validate(s) for s in gather_json(status.state.model_dump(mode="json"))]
        if r.is_main:
            write_receipt(run_dir / RECEIPT_FILE,
                          build_receipt(plan, run_dir, started_at, outcome, per_rank, status="ok"))
        status.enter("teardown")
        teardown()
        status.enter("done")
    except BaseException as exc:
        _record_failure(plan, run_dir, status, exc, started_at, outcome)
        raise
    return 0


def _user_model(plan: Plan, outcome: LaneOutcome) -> UserModel | None:
    """The user's model (`model.entry`), imported and built on the meta device; None for megaspec's own."""
    user = plan.model.user
    if user is None or plan.lane == "bench":
        return None
    built = prepare(plan)
    outcome.model = ModelReport(entry=user.entry, args=user.args, code_sha256=user.code_sha256,
                                num_params=built.num_params, flops_per_token=built.flops_per_token)
    return built


def _run_lane(plan: Plan, r: Rank, status: RankStatus, run_dir: Path, seeded: bool, outcome: LaneOutcome,
              user: UserModel | None) -> None:
    if plan.lane == "bench":
        status.enter("train")
        outcome.bench = BenchReport(**run_bench(plan, r))
        return
    run_training(plan, r, status, run_dir, seeded, outcome, user)


def _record_failure(plan: Plan, run_dir: Path, status: RankStatus, exc: BaseException, started_at: str,
                    outcome: LaneOutcome) -> None:
    """Write this rank's typed error to its status file; rank 0 also writes an error receipt."""
    phase = status.state.phase
    stage = getattr(exc, "stage", None) or (phase if phase in STAGES else "teardown")
    step = getattr(exc, "step", None) or status.state.failing_step()
    error = RankError(code=code_for(exc), stage=stage, step=step, failed_ns=time.time_ns(),
                      message=failure_message(exc)[:2000])
    if storage_error(exc) is not None:  # a full disk: the run's reserve makes room for the error files
        release_reserve(run_dir)
    traceback.print_exc(file=sys.stderr)  # into this rank's log; the terminal gets the receipt's one line
    try:
        status.update(error=error, traceback=traceback.format_exc()[-4000:])
    except OSError as status_exc:  # a full disk: the launcher still names the rank from its exit
        print(f"rank {status.state.rank} could not record its error: {status_exc}", file=sys.stderr)
    if status.state.rank != 0 or phase == "teardown":  # in teardown, rank 0's receipt is written and ok
        return
    try:
        failure = RunError(code=error.code, stage=stage, rank=0, step=step, message=error.message)
        write_receipt(run_dir / RECEIPT_FILE, build_receipt(plan, run_dir, started_at, outcome,
                                                              [status.state], status="error", error=failure))
    except Exception as receipt_exc:  # the launcher completes the receipt anyway
        print(f"rank 0 could not write the receipt: {receipt_exc}", file=sys.stderr)
