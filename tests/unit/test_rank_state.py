"""The per-rank status file is one typed model, `RankState`, on the side that writes it (rank/status.py)
and on every side that reads it (the launcher's triage and receipt, `status`/`collect` for an orphan)."""

from __future__ import annotations

import json

import pytest

from megaspec.runtime.contract.rank_status import RankError, RankState, read_statuses
from megaspec.runtime.contract.rundir import rank_status_file
from megaspec.runtime.rank.status import RankStatus


def test_what_a_rank_writes_is_what_the_launcher_reads(tmp_path):
    status = RankStatus(tmp_path, rank=1, local_rank=1)
    status.enter("train", first_step_s=2.5, compiled=True, cache={"state": "cold"})
    status.update(last_step=4, steady_step_s=0.5)
    status.update(error=RankError(code="MS801", stage="train", step=5, failed_ns=7, message="loss is nan"))
    read = read_statuses(tmp_path)[1]
    assert read == status.state and read.error.code == "MS801" and "train" in read.phase_ns
    assert (read.progress(), read.failing_step()) == ((4, 4), 5)
    assert read.report("e.json", None)["compile_s"] == 2.0


def test_a_field_the_model_does_not_have_is_a_bug_of_the_writer(tmp_path):
    with pytest.raises(TypeError, match="last_setp"):
        RankStatus(tmp_path, rank=0, local_rank=0).update(last_setp=3)


def test_a_status_with_an_unknown_code_or_a_negative_pid_is_not_read(tmp_path):
    for rank, extra in ((0, {}), (1, {"error": {"code": "MS899", "stage": "train"}}), (2, {"pid": -1})):
        path = rank_status_file(tmp_path, rank)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"rank": rank, **extra}))
    assert list(read_statuses(tmp_path)) == [0] and read_statuses(tmp_path)[0] == RankState(rank=0)
