"""Versioned artifacts: one base (`runtime/contract/artifact.py`), the version checked before any field,
and files written before a version bump still read after it (`tests/fixtures/run-v3/` is the run folder
of a real local run of specs/cpu-local.yaml, copied as the runtime and `apply` left it: receipt v3,
manifest v1, plan v1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal, get_args

import pytest

from megaspec.compiler.runs.manifest import Manifest, parse_receipt, read_manifest, store_receipt
from megaspec.compiler.runs.records import load_run
from megaspec.compiler.runs.sweep_manifest import SweepManifest
from megaspec.runtime.contract.artifact import Artifact
from megaspec.runtime.contract.errors import CacheSeedMismatchError
from megaspec.runtime.contract.plan import Plan, read_plan
from megaspec.runtime.contract.receipt import Receipt, read_receipt
from megaspec.runtime.contract.rundir import MANIFEST_FILE, PLAN_FILE, RECEIPT_FILE
from megaspec.runtime.contract.seed_file import SEED_FILE, SeedManifest, read_seed_manifest
from megaspec.runtime.contract.shards import ShardManifest

RUN_V3 = Path(__file__).resolve().parents[1] / "fixtures" / "run-v3"
ARTIFACTS = (Plan, Receipt, Manifest, SweepManifest, SeedManifest, ShardManifest)


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=lambda a: a.__name__)
def test_each_artifact_declares_its_version_once_on_the_one_base(artifact):
    assert issubclass(artifact, Artifact) and artifact.KIND
    field = artifact.model_fields["schema_version"]
    assert get_args(field.annotation) == (field.default,) == (artifact.current_version(),)
    assert not [name for name in artifact.model_fields if name.endswith("_version") and name not in
                ("schema_version", "megaspec_version")]  # one version field (the Plan had `plan_version` too)


def test_a_stored_run_folder_reads_with_todays_readers():
    receipt, manifest, plan = (read_receipt(RUN_V3 / RECEIPT_FILE), read_manifest(RUN_V3),
                               read_plan(RUN_V3 / PLAN_FILE))
    assert (receipt.schema_version, manifest.schema_version) == ("megaspec.receipt.v3", "megaspec.manifest.v1")
    assert plan.schema_version == Plan.current_version() != "megaspec.plan.v1"  # upgraded on the way in
    assert receipt.run_id == manifest.run_id and receipt.status == manifest.state == "ok"
    record = load_run(RUN_V3)
    assert record.receipt == receipt and record.plan == plan


def test_a_plan_handed_over_as_text_goes_through_the_same_versioned_reader():
    """The generated app, the ranks and megaspec's child processes read the plan text they are given with
    `from_json`: a previous version is upgraded, another kind or version is refused by name."""
    text = (RUN_V3 / PLAN_FILE).read_text()
    assert Plan.from_json(text) == read_plan(RUN_V3 / PLAN_FILE)
    with pytest.raises(ValueError, match="plan schema_version is 'megaspec.plan.v9'"):
        Plan.from_json(text.replace("megaspec.plan.v1", "megaspec.plan.v9"))


def test_a_stored_receipt_still_finishes_its_manifest(tmp_path):
    manifest = read_manifest(RUN_V3)
    running = Manifest.model_validate({**manifest.model_dump(), "state": "running", "completed_at": None,
                                       "receipt": None, "transitions": manifest.transitions[:-1]})
    finished = store_receipt(tmp_path, running, (RUN_V3 / RECEIPT_FILE).read_bytes(), source="stored")
    assert finished.state == "ok" and (tmp_path / RECEIPT_FILE).is_file()


class ReceiptV4(Receipt):
    """A test-only bump: v4 adds a required field, and v3 files are upgraded to it."""

    UPGRADES = {"megaspec.receipt.v3": lambda d: {**d, "schema_version": "megaspec.receipt.v4", "note": "v3"}}
    schema_version: Literal["megaspec.receipt.v4"] = "megaspec.receipt.v4"
    note: str


class ManifestV2(Manifest):
    UPGRADES = {"megaspec.manifest.v1": lambda d: {**d, "schema_version": "megaspec.manifest.v2",
                                                   "attempts": 1}}
    schema_version: Literal["megaspec.manifest.v2"] = "megaspec.manifest.v2"
    attempts: int


def test_after_a_version_bump_a_v3_receipt_and_a_v1_manifest_still_read():
    receipt = ReceiptV4.read(RUN_V3 / RECEIPT_FILE)
    assert receipt.note == "v3" and receipt.schema_version == "megaspec.receipt.v4"
    assert receipt.run_id == read_receipt(RUN_V3 / RECEIPT_FILE).run_id
    manifest = ManifestV2.read(RUN_V3 / MANIFEST_FILE)
    assert manifest.attempts == 1 and manifest.run_id == receipt.run_id


def test_a_version_with_no_way_up_is_refused_by_name(tmp_path):
    data = json.loads((RUN_V3 / RECEIPT_FILE).read_text()) | {"schema_version": "megaspec.receipt.v2"}
    (tmp_path / RECEIPT_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="receipt schema_version is 'megaspec.receipt.v2'; this megaspec reads "
                                         "'megaspec.receipt.v4', 'megaspec.receipt.v3'"):
        ReceiptV4.read(tmp_path / RECEIPT_FILE)
    with pytest.raises(ValueError, match="the receipt holds a JSON list, not an object"):
        parse_receipt("[1]")


def test_a_seeds_version_is_checked_before_its_fields(tmp_path):
    (tmp_path / SEED_FILE).write_text(json.dumps({"schema_version": "megaspec.seed.v0", "keys": "of another day"}))
    with pytest.raises(CacheSeedMismatchError, match=r"seed manifest schema_version is 'megaspec.seed.v0'; "
                                                     r"this megaspec reads 'megaspec.seed.v1'"):
        read_seed_manifest(tmp_path)
    (tmp_path / SEED_FILE).write_text("{")
    with pytest.raises(CacheSeedMismatchError, match="make the seed again"):
        read_seed_manifest(tmp_path)


def test_a_v1_plan_upgrades_to_the_plan_of_today(tmp_path):
    shutil.copy(RUN_V3 / PLAN_FILE, tmp_path / PLAN_FILE)
    upgraded = read_plan(tmp_path / PLAN_FILE)
    assert "plan_version" not in upgraded.to_json() and upgraded == Plan.model_validate_json(upgraded.to_json())
