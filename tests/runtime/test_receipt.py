"""The receipt contract: schema freshness, atomic write, versioned read, no torch import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jsonschema
import pytest

from megaspec.runtime.contract.receipt import (
    SCHEMA_PATH,
    Distributed,
    Hardware,
    Parallelism,
    PlanRef,
    Provenance,
    Receipt,
    SpecRef,
    read_receipt,
    receipt_schema,
    write_receipt,
)


def small_receipt(**overrides) -> Receipt:
    fields = dict(
        megaspec_version="0.1.0", run_id="r1", name="tiny", lane="train", status="ok",
        started_at="2026-01-01T00:00:00.000000Z", spec=SpecRef(path="specs/a.yaml", sha256="0" * 64),
        plan=PlanRef(sha256="1" * 64, plan_version=1), rehearsal=False, substitutions=[],
        hardware=Hardware(requested_gpu="H100", requested_gpu_count=8, requested_exact=False,
                          observed_devices=["NVIDIA H200"] * 8, observed_gpu_count=8, matches_request=False),
        distributed=Distributed(backend="nccl", device="cuda", nodes=1, nproc_per_node=8, world_size=8,
                                max_restarts=0, init_timeout_s=600, timeout_s=100, env={}),
        parallelism=Parallelism(param_dtype="bfloat16", reduce_dtype="float32", reshard_after_forward="default",
                                activation_checkpointing="none", compile=True),
        provenance=Provenance(git_sha=None, git_dirty=None, megaspec="0.1.0", torch="2.13.0", modal=None,
                              python="3.11.7", host="h"),
        losses=[5.5, 5.25])
    fields.update(overrides)
    return Receipt(**fields)


def test_committed_schema_is_fresh():
    """Regenerate with `python -m megaspec.runtime.contract.receipt > runtime/contract/receipt.schema.json`."""
    assert SCHEMA_PATH.read_text() == receipt_schema()


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_the_documented_regeneration_command_writes_the_committed_schema(hash_seed):
    """In a fresh process and under another hash seed: set or dict order leaking into the schema fails here."""
    out = subprocess.run([sys.executable, "-m", "megaspec.runtime.contract.receipt"], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    assert out.stdout == SCHEMA_PATH.read_text()


def test_schema_validates_a_receipt_and_rejects_an_unknown_status():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(small_receipt().model_dump(mode="json"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**small_receipt().model_dump(mode="json"), "status": "success"}, schema)


def test_write_then_read_round_trips(tmp_path):
    path = write_receipt(tmp_path / "sub" / "receipt.json", small_receipt())
    assert read_receipt(path) == small_receipt()
    assert [p.name for p in path.parent.iterdir()] == ["receipt.json"]  # no temp file left behind


def test_read_rejects_another_schema_version(tmp_path):
    raw = small_receipt().model_dump(mode="json")
    raw["schema_version"] = "megaspec.receipt.v0"
    (tmp_path / "r.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="megaspec.receipt.v0"):
        read_receipt(tmp_path / "r.json")


def test_requested_vs_observed_gpu_is_kept():
    hw = small_receipt().hardware
    assert (hw.requested_gpu, hw.observed_devices[0], hw.matches_request) == ("H100", "NVIDIA H200", False)


def test_receipt_module_does_not_import_torch():
    code = "import sys, megaspec.runtime.contract.receipt, megaspec.runtime.contract.plan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_metrics_carry_the_memory_estimate_on_gpu_only():
    from megaspec.runtime.contract import memory
    from megaspec.runtime.evidence.assemble import _metrics
    from megaspec.runtime.rank.outcome import LaneOutcome

    from .conftest import make_plan

    outcome = LaneOutcome(losses=[5.5, 5.0])
    cpu = make_plan(2)
    gpu = make_plan(2, gpu="H100", train={"precision": "bf16"})
    assert _metrics(cpu, outcome, []).est_peak_mem_gib is None
    assert _metrics(gpu, outcome, []).est_peak_mem_gib == memory.for_plan(gpu).allocated / memory.GIB
