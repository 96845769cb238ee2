"""Manifest lifecycle, atomic writes, the versioned reader, receipt storage and run ids."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.run_id import is_run_id, mint_run_id, slugify_name


def make_manifest(state: str = "planned", backend: str = "local") -> mf.Manifest:
    return mf.Manifest(
        run_id="tiny-cpu-20260102-030405-abcd", name="tiny-cpu", lane="train", backend=backend, state=state,
        transitions=[mf.Transition(state=state, at="2026-01-02T03:04:05Z")],
        spec=mf.SpecRef(path="specs/cpu-local.yaml", sha256="a" * 64), plan_sha256="b" * 64, app_name="ms-tiny-cpu",
    )


def make_receipt(status: str = "ok", error: dict | None = None) -> dict:
    """The smallest valid megaspec.receipt.v3 object (what a remote call returns)."""
    return {
        "schema_version": "megaspec.receipt.v3", "megaspec_version": "0.1.0",
        "run_id": "tiny-cpu-20260102-030405-abcd", "name": "tiny-cpu", "lane": "train", "status": status,
        "started_at": "2026-01-02T03:04:06Z", "spec": {"path": "specs/cpu-local.yaml", "sha256": "a" * 64},
        "plan": {"sha256": "b" * 64, "plan_version": 1}, "rehearsal": False, "substitutions": [],
        "hardware": {"requested_gpu": None, "requested_gpu_count": 0, "requested_exact": False,
                     "observed_devices": ["cpu"], "observed_gpu_count": 0, "matches_request": None},
        "distributed": {"backend": "gloo", "device": "cpu", "nodes": 1, "nproc_per_node": 2, "world_size": 2,
                        "max_restarts": 0, "init_timeout_s": 600, "timeout_s": 120, "env": {}},
        "parallelism": {"param_dtype": "float32", "reduce_dtype": "float32", "reshard_after_forward": "default",
                        "activation_checkpointing": "none", "compile": False},
        "provenance": {"git_sha": None, "git_dirty": None, "megaspec": "0.1.0", "torch": None, "modal": None,
                       "python": "3.11.9", "host": "test"},
        "error": error,
    }


CRASH = {"code": "MS802", "stage": "train", "rank": 1, "step": 7, "message": "RuntimeError: boom",
         "error_file": "runs/x/logs/1/error.json"}


def test_advance_stamps_each_transition_and_completes_terminal_states():
    m = mf.advance(make_manifest(), "running", now="2026-01-02T03:04:06Z")
    m = mf.advance(m, "ok", now="2026-01-02T03:05:00Z", receipt="receipt.json")
    assert [(t.state, t.at) for t in m.transitions] == [
        ("planned", "2026-01-02T03:04:05Z"), ("running", "2026-01-02T03:04:06Z"), ("ok", "2026-01-02T03:05:00Z")]
    assert m.completed_at == "2026-01-02T03:05:00Z"
    assert m.is_terminal and m.receipt == "receipt.json"


@pytest.mark.parametrize(("start", "target"), [("ok", "running"), ("error", "ok"), ("running", "detached"),
                                               ("interrupted", "running")])
def test_advance_refuses_moves_out_of_terminal_states_or_backwards(start, target):
    with pytest.raises(ValueError, match=f"cannot go from '{start}' to '{target}'"):
        mf.advance(make_manifest(start), target)


def test_advance_in_place_only_updates_fields():
    m = mf.advance(make_manifest("detached", "modal"), "detached", last_polled_at="2026-01-02T04:00:00Z")
    assert m.state == "detached" and len(m.transitions) == 1
    assert m.last_polled_at == "2026-01-02T04:00:00Z" and m.completed_at is None


def test_advance_validates_updates():
    with pytest.raises(ValueError):
        mf.advance(make_manifest("running"), "error", error={"stage": "somewhere", "message": "x"})


def test_write_then_read_round_trips_and_leaves_no_temp_files(tmp_path):
    m = mf.advance(make_manifest(), "error", error=mf.ManifestError(stage="bootstrap", message="image build failed"))
    path = mf.write_manifest(tmp_path, m)
    assert path == tmp_path / "manifest.json"
    assert mf.read_manifest(tmp_path) == m == mf.read_manifest(path)
    assert json.loads(path.read_text())["schema_version"] == "megaspec.manifest.v1"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_read_manifest_checks_schema_version(tmp_path):
    raw = json.loads(make_manifest().model_dump_json())
    raw["schema_version"] = "megaspec.manifest.v0"
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="manifest schema_version is 'megaspec.manifest.v0'"):
        mf.read_manifest(tmp_path)


def test_store_receipt_ok_writes_receipt_and_finishes(tmp_path):
    m = mf.store_receipt(tmp_path, make_manifest("running"), make_receipt("ok"), source="test")
    assert m.state == "ok" and m.receipt == "receipt.json" and m.error is None
    assert json.loads((tmp_path / "receipt.json").read_text())["status"] == "ok"


def test_store_receipt_accepts_json_text_and_bytes(tmp_path):
    text = json.dumps(make_receipt("ok"))
    assert mf.store_receipt(tmp_path, make_manifest("running"), text, source="t").state == "ok"
    assert mf.store_receipt(tmp_path, make_manifest("detached"), text.encode(), source="t").state == "ok"


def test_store_receipt_failed_run_gets_triaged_error(tmp_path):
    m = mf.store_receipt(tmp_path, make_manifest("running"), make_receipt("error", CRASH), source="test")
    assert m.state == "error"
    assert m.error == mf.ManifestError(stage="remote", rank=1, error_file="runs/x/logs/1/error.json",
                                  message="MS802 in stage `train` at step 7: RuntimeError: boom")


@pytest.mark.parametrize(("runtime_stage", "triage_stage"), [("bootstrap", "bootstrap"), ("receipt", "record"),
                                                             ("compile", "remote"), ("first-step", "remote")])
def test_triage_error_maps_runtime_stage_to_owner(runtime_stage, triage_stage):
    receipt = mf.parse_receipt(make_receipt("error", {**CRASH, "stage": runtime_stage}))
    assert mf.triage_error(receipt).stage == triage_stage


@pytest.mark.parametrize(("payload", "message"), [
    ("not json", "the receipt is not JSON"),
    ([1, 2], "the receipt holds a JSON list, not an object"),
    ({"schema_version": "megaspec.receipt.v0"}, "receipt schema_version is 'megaspec.receipt.v0'"),
    ({**make_receipt(), "status": "success"}, "does not match megaspec.receipt.v3"),
])
def test_store_receipt_invalid_receipt_is_a_record_error(tmp_path, payload, message):
    m = mf.store_receipt(tmp_path, make_manifest("running"), payload, source="the call's return value")
    assert m.state == "error" and m.error.stage == "record"
    assert m.error.message.startswith("the call's return value: ") and message in m.error.message
    assert not (tmp_path / "receipt.json").exists()


def test_store_receipt_unwritable_run_dir_is_a_persistence_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    m = mf.store_receipt(blocker, make_manifest("running"), make_receipt("ok"), source="test")
    assert m.state == "error" and m.error.stage == "persistence"


def test_run_ids_sort_by_time_and_match_the_pattern():
    early = mint_run_id("Dense 1B/H200x8", now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), suffix="00ff")
    late = mint_run_id("Dense 1B/H200x8", now=datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc))
    assert early == "dense-1b-h200x8-20260102-030405-00ff"
    assert is_run_id(early) and is_run_id(late) and sorted([late, early]) == [early, late]
    assert not is_run_id("dense-20260102-030405") and slugify_name("__") == "run"


def test_store_receipt_interrupted_run_is_interrupted_not_error(tmp_path):
    stop = {"code": "MS809", "stage": "train", "rank": None, "step": None, "message": "interrupted"}
    m = mf.store_receipt(tmp_path, make_manifest("running"), make_receipt("interrupted", stop), source="test")
    assert m.state == "interrupted" and m.error is None and m.receipt == "receipt.json" and m.completed_at


def test_receipt_view_sets_the_measured_peak_beside_the_estimate():
    from megaspec.compiler.runs.receipt_view import format_receipt
    from megaspec.runtime.contract.receipt import Receipt

    receipt = Receipt.model_validate({**make_receipt(), "metrics": {"peak_mem_gib": 61.5, "est_peak_mem_gib": 60.0}})
    assert "  peak memory       61.50 GiB (estimated 60.00 GiB before launch: 102%)" in format_receipt(receipt)
    receipt = Receipt.model_validate({**make_receipt(), "metrics": {"peak_mem_gib": 0.34}})
    assert "  peak memory       0.34 GiB" in format_receipt(receipt).splitlines()
