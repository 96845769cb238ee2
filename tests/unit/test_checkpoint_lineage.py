"""A checkpoint's lineage (`checkpoint_dirs.lineage`): what its weights are a function of. Running longer,
elsewhere, on other hardware or with other trackers continues it; another model, data or optimization
setting starts another experiment, whose run must not resume the checkpoint."""

from __future__ import annotations

import json

import pytest

from megaspec.runtime.contract.checkpoint_dirs import CHECKSUMS_FILE, lineage, lineage_of, write_checksums
from tests.runtime.conftest import make_plan

BASE = {"train": {"lr_warmup_steps": 2}}


@pytest.mark.parametrize("change", [
    {"train": {"steps": 600, "lr_warmup_steps": 2}},
    {"train": {"log_every": 5, "lr_warmup_steps": 2}},
    {"resources": {"timeout": "2h", "retries": 2}, **BASE},
    {"checkpoint": {"every": 7, "keep": 5}, **BASE},
    {"tracking": {"tensorboard": True}, **BASE},
], ids=["steps", "log_every", "resources", "checkpoint policy", "tracking"])
def test_what_a_continuation_may_change_keeps_the_lineage(change):
    assert lineage(make_plan(2, **change)) == lineage(make_plan(2, **BASE))


@pytest.mark.parametrize("change", [
    {"train": {"lr": 1e-2, "lr_warmup_steps": 2}},
    {"train": {"seed": 7, "lr_warmup_steps": 2}},
    {"train": {"grad_clip": 0.5, "lr_warmup_steps": 2}},
    {"train": {"global_batch": 16, "lr_warmup_steps": 2}},
    {"train": {"lr_warmup_steps": 3}},
    {"preset": "dense-125m", **BASE},
], ids=["lr", "seed", "grad_clip", "global_batch", "lr warmup", "model"])
def test_another_model_or_optimization_is_another_lineage(change):
    assert lineage(make_plan(2, **change)) != lineage(make_plan(2, **BASE))


def test_a_checkpoint_records_its_lineage_and_one_saved_before_lineages_has_none(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "shard").write_bytes(b"x")
    write_checksums(tmp_path / "a", "abc")
    assert lineage_of(tmp_path / "a") == "abc" and "shard" in json.loads((tmp_path / "a" / CHECKSUMS_FILE).read_text())["sha256"]
    write_checksums(tmp_path / "a")
    assert lineage_of(tmp_path / "a") is None and lineage_of(tmp_path / "missing") is None
