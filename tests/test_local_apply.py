"""`megaspec apply` end to end on this machine: the console script, the elastic launcher, FSDP2 on
two CPU ranks (gloo), the manifest and the receipt. Tiny preset and a handful of steps."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from megaspec.compiler.runs.manifest import read_manifest
from megaspec.runtime.contract.receipt import read_receipt
from tests.conftest import REPO_ROOT, run_megaspec

pytestmark = pytest.mark.slow

# A GPU spec users could write: two H100s, rehearsed on two CPU ranks with `--target local`.
H100X2_SPEC = """\
megaspec: 1
name: tiny-h100x2
lane: train
target: modal
resources:
  gpu: H100:2
  exact: true
  timeout: 30m
image:
  python: "3.11"
  packages: [torch==2.8.0, numpy==2.2.6, pydantic==2.11.9]
cache:
  policy: warm
preset: tiny
train:
  steps: 200
  warmup_steps: 3
  global_batch: 8
  micro_batch: 4
  seq_len: 64
  compile: false
data:
  source: synthetic
"""


def apply(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    """Run the real console entry point; returns the process and the one run directory it made."""
    proc = run_megaspec("apply", *args, "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "build"),
                        env={**os.environ, **(env or {})})
    runs = sorted((tmp_path / "runs").iterdir()) if (tmp_path / "runs").exists() else []
    assert len(runs) == 1, proc.stdout + proc.stderr
    return proc, runs[0]


def test_apply_cpu_spec_runs_to_an_ok_receipt(tmp_path):
    proc, run_dir = apply(tmp_path, "specs/cpu-local.yaml", "--steps", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = read_manifest(run_dir)
    assert manifest.state == "ok" and manifest.backend == "local" and manifest.run_id == run_dir.name
    assert [t.state for t in manifest.transitions] == ["planned", "running", "ok"]
    receipt = read_receipt(run_dir / "receipt.json")
    assert receipt.status == "ok" and not receipt.rehearsal and receipt.run_id == run_dir.name
    assert receipt.steps.completed == 10 and receipt.distributed.world_size == 2
    assert receipt.plan.sha256 == manifest.plan_sha256
    assert receipt.cost.usd == 0 and receipt.cost.gpu_seconds == 0 and receipt.cost.est_usd == 0  # CPU: free
    assert sorted(r.rank for r in receipt.per_rank) == [0, 1]
    logs = [Path(r.log_dir) for r in receipt.per_rank if r.log_dir]
    assert len(logs) == 2 and all(any(p.iterdir()) for p in logs), "per-rank log directories"
    out = proc.stdout
    assert "step 10/10  loss " in out and "MFU n/a on CPU" in out and f"receipt: {run_dir / 'receipt.json'}" in out
    assert "REHEARSAL" not in out
    assert (tmp_path / "build" / "tiny-cpu" / "app.py").is_file()


def test_apply_gpu_spec_locally_is_a_labelled_rehearsal(tmp_path):
    spec = tmp_path / "h100x2.yaml"
    spec.write_text(H100X2_SPEC)
    proc, run_dir = apply(tmp_path, str(spec), "--target", "local")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    receipt = read_receipt(run_dir / "receipt.json")
    assert receipt.rehearsal and receipt.distributed.world_size == 2 and receipt.distributed.device == "cpu"
    assert "GPU `H100:2` x 1 node(s) -> 2 CPU ranks (gloo)" in receipt.substitutions
    assert read_manifest(run_dir).rehearsal
    assert "REHEARSAL on CPU -- not a GPU result. Substitutions:" in proc.stdout
    assert "  - train.precision `bf16` -> `fp32`" in proc.stdout


def test_apply_failing_rank_exits_1_naming_rank_stage_and_error_file(tmp_path):
    # A failure drill: rank 1 raises at step 3 of training (runtime/contract/errors.py, MEGASPEC_FAULT).
    proc, run_dir = apply(tmp_path, "specs/cpu-local.yaml", "--steps", "6", env={"MEGASPEC_FAULT": "1:train:3:raise"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    manifest = read_manifest(run_dir)
    assert manifest.state == "error" and manifest.error.stage == "remote" and manifest.error.rank == 1
    assert manifest.error.error_file and Path(manifest.error.error_file).is_file()
    assert "rank 1, stage train, step 3" in proc.stdout
    assert f"error file        {manifest.error.error_file}" in proc.stdout
    receipt = json.loads((run_dir / "receipt.json").read_text())
    assert receipt["status"] == "error" and receipt["error"]["rank"] == 1
    assert (receipt["steps"]["completed"], len(receipt["losses"])) == (2, 2)  # what ran before the failure is kept
    # The terminal gets the cause in one line; the worker's traceback goes to its log and error file.
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    rank_log = Path(manifest.error.error_file).parent / "stderr.log"
    assert "Traceback" in rank_log.read_text() and "injected failure" in rank_log.read_text()


def test_a_killed_local_run_resumes_in_its_run_directory(tmp_path):
    spec = tmp_path / "ckpt.yaml"
    spec.write_text((REPO_ROOT / "specs" / "cpu-local.yaml").read_text() + "checkpoint:\n  every: 3\n")
    killed, run_dir = apply(tmp_path, str(spec), "--steps", "6", env={"MEGASPEC_FAULT": "1:train:5:kill"})
    assert killed.returncode == 1 and read_manifest(run_dir).state == "error"
    resumed, same_dir = apply(tmp_path, str(spec), "--steps", "6", "--resume", str(run_dir))
    assert resumed.returncode == 0 and same_dir == run_dir, resumed.stdout + resumed.stderr
    receipt = read_receipt(run_dir / "receipt.json")
    assert (receipt.status, receipt.steps.resumed_from, receipt.steps.completed, len(receipt.losses)) == \
        ("ok", 3, 6, 6)
    assert receipt.losses[:3] == read_receipt(run_dir / "attempts" / "1" / "receipt.json").losses[:3]
    assert read_manifest(run_dir / "attempts" / "1").state == "error" and read_manifest(run_dir).state == "ok"
