"""sweep.json: states refreshed from the runs' own manifests, and how many queued runs may start."""

from __future__ import annotations

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.sweep_launch import free_slots
from megaspec.compiler.runs.sweep_manifest import (
    SweepManifest,
    SweepRunEntry,
    read_sweep,
    refresh,
    write_sweep,
)
from tests.unit.test_manifest import make_manifest


def sweep_of(states: list[str], max_parallel: int | None) -> SweepManifest:
    runs = [SweepRunEntry(name=f"s-{i}", values={"train.lr": i}, spec=f"specs/s-{i}.yaml", run_id=f"s-{i}",
                          run_dir=f"s-{i}", state=state) for i, state in enumerate(states)]
    return SweepManifest(sweep_id="s", source="s.yaml", source_sha256=None, target="modal",
                         max_parallel=max_parallel, created_at="2026-01-02T03:04:05Z", runs=runs)


@pytest.mark.parametrize(("states", "max_parallel", "free"), [
    (["planned"] * 5, 2, 2),
    (["detached", "running", "planned", "planned"], 2, 0),
    (["ok", "error", "running", "planned", "planned"], 2, 1),  # finished runs free their slots
    (["planned"] * 3, None, 3),  # no cap: everything starts at once
    (["ok", "ok"], 1, 0),
])
def test_free_slots(states, max_parallel, free):
    assert free_slots(sweep_of(states, max_parallel)) == free


def test_refresh_reads_each_runs_manifest_and_rewrites_the_sweep(tmp_path):
    write_sweep(tmp_path, sweep_of(["planned", "planned"], 1))
    mf.write_manifest(tmp_path / "s-0", mf.advance(make_manifest("running", "modal"), "ok"))
    assert [r.state for r in refresh(tmp_path).runs] == ["ok", "planned"]
    assert [r.state for r in read_sweep(tmp_path).runs] == ["ok", "planned"]  # written back


@pytest.mark.parametrize("state", ["ok", "diverged", "detached", "running", "planned"])
def test_a_run_that_is_a_result_or_in_flight_is_never_put_back_to_planned(tmp_path, state):
    from megaspec.compiler.runs.sweep_launch import AGAIN_STATES, requeue

    mf.write_manifest(tmp_path, make_manifest(state, "modal"))
    before = (tmp_path / mf.MANIFEST_FILE).read_bytes()
    assert requeue(tmp_path, AGAIN_STATES | {state}) is False  # even when a caller asks for it
    assert (tmp_path / mf.MANIFEST_FILE).read_bytes() == before and not (tmp_path / "attempts").exists()
