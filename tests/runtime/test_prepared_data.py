"""A `data.path` made by `megaspec data prepare`: the launcher's checks read its manifest (MS813 when
the manifest and the model or the files disagree), and the ranks read its `train/` and `val/` splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megaspec.compiler.data.prepare import prepare
from megaspec.compiler.data.tokenizer import load_spec
from megaspec.runtime.contract.shards import SHARDS_MANIFEST_FILE
from megaspec.runtime.state.data import TokenShards, stage
from megaspec.runtime.state.data_check import BadDataError, check_shards

from .conftest import make_plan

TEXT = "".join(f"line {i}: a small corpus for the shard checks, long enough to train on\n" for i in range(200))


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    (tmp_path / "corpus.txt").write_text(TEXT)
    out = tmp_path / "data"
    prepare([str(tmp_path / "corpus.txt")], load_spec("bytes"), out, field="text", val_fraction=0.1, jobs=1,
            shard_tokens=4096, version="test")
    return out


def shards_plan(path: Path, **train):
    return make_plan(2, data={"source": "shards", "path": str(path)}, train=train)


def test_the_ranks_read_train_and_val_as_the_manifest_lists_them(prepared):
    manifest = json.loads((prepared / SHARDS_MANIFEST_FILE).read_text())
    train = TokenShards(str(prepared), "uint32", 32)  # the manifest's dtype wins over the spec's
    val = TokenShards(str(prepared), "uint32", 32, split="val")
    assert len(train.arrays) == len(manifest["train"]) > 1 and len(val.arrays) == len(manifest["val"])
    assert bytes(val.rows(0, 1)[0].tolist()).decode() == TEXT[:33]
    report = stage(shards_plan(prepared, eval={"every": 2, "batches": 1}))
    assert report["num_tokens"] == sum(s["num_tokens"] for s in manifest["train"])
    assert report["val_num_tokens"] == sum(s["num_tokens"] for s in manifest["val"])
    assert report["tokenizer"] == "bytes" and report["corpus_sha256"] == manifest["corpus_sha256"]


def test_a_tokenizer_vocabulary_over_the_models_is_refused(prepared):
    manifest = json.loads((prepared / SHARDS_MANIFEST_FILE).read_text())
    manifest["tokenizer"]["vocab_size"] = 50_000
    (prepared / SHARDS_MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BadDataError, match=r"tokenized by `bytes` \(vocabulary 50000\), but the model's vocabulary "
                                           r"has 256 ids; set `model.vocab_size` to at least 50000"):
        stage(shards_plan(prepared))


@pytest.mark.parametrize("damage, expected", [
    (lambda d: (d / "train/shard_000001.bin").write_bytes((d / "train/shard_000001.bin").read_bytes()[:-2]),
     "its header claims 4096 tokens but the file holds 4095; the file is truncated"),
    (lambda d: (d / "train/shard_000000.bin").unlink(), "listed in `manifest.json` but missing"),
    (lambda d: (d / SHARDS_MANIFEST_FILE).write_text("{"), "cannot be read"),
    (lambda d: (d / SHARDS_MANIFEST_FILE).write_text('{"schema_version": "megaspec.shards.v9"}'), "cannot be read"),
])
def test_a_folder_changed_after_prepare_is_one_ms813_line(prepared, damage, expected):
    damage(prepared)
    with pytest.raises(BadDataError, match=expected) as caught:
        check_shards(str(prepared), "uint16", 32, 256)
    assert caught.value.code == "MS813"


def test_a_shard_count_that_disagrees_with_the_manifest_is_refused(prepared):
    manifest = json.loads((prepared / SHARDS_MANIFEST_FILE).read_text())
    manifest["train"][0]["num_tokens"] -= 1
    (prepared / SHARDS_MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BadDataError, match=r"shard_000000.bin` holds 4096 tokens of uint16; `manifest.json` lists "
                                           r"4095 of uint16: the folder changed"):
        check_shards(str(prepared), "uint16", 32, 256)


def test_eval_needs_a_val_split_that_holds_one_evaluation(prepared, tmp_path):
    with pytest.raises(BadDataError, match=r"`val/` shards .* hold \d+ windows .* one evaluation reads 800 "
                                           r"\(`train.eval.batches` 100 x `train.global_batch` 8\)"):
        stage(shards_plan(prepared, eval={"every": 2, "batches": 100}))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.bin").write_bytes(bytes(2 * 1000))
    with pytest.raises(BadDataError, match="has no `val` split: `train.eval` reads the `val/` shards"):
        TokenShards(str(plain), "uint16", 32, split="val")


def test_a_plan_that_evaluates_synthetic_data_is_refused_before_launch():
    plan = make_plan(2, data={"source": "shards", "path": "/vol/data/x"}, train={"eval": {"every": 2}})
    synthetic = plan.model_copy(update={"data": plan.data.model_copy(update={"source": "synthetic", "path": None})})
    with pytest.raises(BadDataError, match="synthetic data has none"):
        stage(synthetic)
