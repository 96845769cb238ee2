"""`train.eval` for real: a prepared corpus, FSDP2 on CPU ranks, the validation loss in progress.jsonl,
the receipt and the trackers' numbers; the learning rate and gradient norm of every logged step."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from megaspec.compiler.data.prepare import prepare
from megaspec.compiler.data.tokenizer import load_spec
from megaspec.runtime.contract.plan import Plan
from megaspec.runtime.launch.entry import run_plan
from megaspec.runtime.train.loop import lr_at
from megaspec.runtime.train.tracking import step_metrics

from .conftest import make_plan
from .test_tracking import wandb_env  # noqa: F401 - the fixture

WORDS = "the quick brown fox jumps over a lazy dog while seven birds sing in old trees".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    lines = [" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(10)) + ".\n" for i in range(600)]
    (root / "corpus.txt").write_text("".join(lines))
    prepare([str(root / "corpus.txt")], load_spec("bytes"), root / "data", field="text", val_fraction=0.05, jobs=1,
            version="test")
    return root / "data"


def eval_plan(corpus: Path, ranks: int) -> Plan:
    return make_plan(ranks, steps=6, global_batch=8, data={"source": "shards", "path": str(corpus)},
                     train={"eval": {"every": 4, "batches": 2}, "log_every": 2, "lr_warmup_steps": 2, "precision": "fp32"})


@pytest.mark.slow
def test_validation_loss_is_logged_falls_and_does_not_depend_on_the_ranks(corpus, tmp_path):
    receipts = {}
    for ranks in (1, 2):
        plan = eval_plan(corpus, ranks)
        receipts[ranks] = run_plan(plan, tmp_path / f"r{ranks}")
        assert receipts[ranks]["status"] == "ok", receipts[ranks]["error"]
    evals = receipts[2]["eval"]
    assert [e["step"] for e in evals] == [4, 6]  # every 4 steps, and the last
    assert evals[-1]["loss"] < evals[0]["loss"] < math.log(256) + 0.5
    for one, two in zip(receipts[1]["eval"], evals, strict=True):
        assert one["step"] == two["step"] and abs(one["loss"] - two["loss"]) < 1e-5
    events = [json.loads(line) for line in (tmp_path / "r2" / "progress.jsonl").read_text().splitlines()]
    assert [e["eval"] for e in events if "eval" in e] == evals
    logged = [e for e in events if "step" in e]
    assert [e["step"] for e in logged] == [2, 4, 6]
    assert [e["lr"] for e in logged] == [lr_at(eval_plan(corpus, 2), s) for s in (2, 4, 6)]
    assert all(math.isfinite(e["grad_norm"]) and e["grad_norm"] > 0 for e in logged)
    assert receipts[2]["data"]["val_num_tokens"] > 0 and receipts[2]["data"]["tokenizer"] == "bytes"


def test_the_trackers_get_the_same_numbers_as_progress_jsonl():
    logged = {"step": 4, "loss": 2.0, "losses": [2.5, 2.0], "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 10.0}
    assert step_metrics(logged) == [(3, {"train/loss": 2.5}), (4, {"train/loss": 2.0, "train/tokens_per_s": 10.0,
                                                                   "train/lr": 1e-3, "train/grad_norm": 0.5})]
    assert step_metrics({"eval": {"step": 4, "loss": 1.5}}) == [(4, {"val/loss": 1.5})]
    assert step_metrics({"resumed_from": 3, "losses": [1.0]}) == []


def test_the_lr_schedule_warms_up_for_lr_warmup_steps_then_decays_to_min_lr():
    plan = make_plan(2, steps=10, train={"lr_warmup_steps": 4, "lr": 1e-3, "min_lr_ratio": 0.1, "warmup_steps": 7})
    assert plan.train.lr_warmup_steps == 4 and plan.train.warmup_steps == 7  # two knobs, two meanings
    assert [round(lr_at(plan, s), 12) for s in (1, 4)] == [2.5e-4, 1e-3]
    assert lr_at(plan, 5) < 1e-3 and math.isclose(lr_at(plan, 10), 1e-4)
    assert make_plan(2, steps=300).train.lr_warmup_steps == 30 and make_plan(2, steps=5000).train.lr_warmup_steps == 100


def test_a_malformed_eval_event_is_skipped_like_any_malformed_line(tmp_path):
    from megaspec.runtime.contract.progress import read_record

    (tmp_path / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in (
        {"eval": "high"}, {"eval": {"step": -1, "loss": 1.0}}, {"resumed_from": 2, "losses": [3.0, 2.5],
                                                                "evals": [{"step": 2, "loss": 2.4}]},
        {"eval": {"step": 4, "loss": 2.2}}, {"step": 4, "loss": 2.0, "losses": [2.3, 2.0], "lr": "fast"})))
    record = read_record(tmp_path)
    assert record.evals == [{"step": 2, "loss": 2.4}, {"step": 4, "loss": 2.2}] and record.losses == [3.0, 2.5]


@pytest.mark.slow
def test_a_killed_run_resumes_with_its_evaluations(corpus, tmp_path, monkeypatch):
    ckpt = {"checkpoint": {"every": 3, "resume": "auto"}, "plan": {"checkpoint": {"dir": str(tmp_path / "ckpt")}}}
    spec = {"data": {"source": "shards", "path": str(corpus)},
            "train": {"eval": {"every": 2, "batches": 1}, "precision": "fp32"}}
    whole = run_plan(make_plan(2, steps=6, **spec), tmp_path / "whole")
    monkeypatch.setenv("MEGASPEC_FAULT", "1:train:5:kill")
    killed = run_plan(make_plan(2, steps=6, **spec, **ckpt), tmp_path / "killed")
    assert killed["error"]["code"] == "MS802" and [e["step"] for e in killed["eval"]] == [2, 4]
    monkeypatch.delenv("MEGASPEC_FAULT")
    resumed = run_plan(make_plan(2, steps=6, **spec, **ckpt), tmp_path / "resumed")
    assert resumed["status"] == "ok" and resumed["steps"]["resumed_from"] == 3
    assert resumed["eval"] == whole["eval"] and [e["step"] for e in whole["eval"]] == [2, 4, 6]


EVAL_EVENTS = [{"step": 2, "loss": 5.25, "losses": [5.5, 5.25], "lr": 1e-3, "grad_norm": 0.75, "tokens_per_s": 200.0},
               {"eval": {"step": 2, "loss": 5.4}},
               {"step": 4, "loss": 4.75, "losses": [5.0, 4.75], "lr": 5e-4, "grad_norm": 0.5, "tokens_per_s": 400.0},
               {"eval": {"step": 4, "loss": 4.9}}]


def test_tensorboard_and_wandb_read_back_lr_grad_norm_and_val_loss(tmp_path, wandb_env):
    from megaspec.runtime.train import tracking

    from .test_tracking import read_scalars, read_wandb

    plan = make_plan(tracking={"tensorboard": True, "wandb": {"project": "evals"}})
    with tracking.mirrored(plan, tmp_path, True) as mirrors:
        for event in EVAL_EVENTS:
            for mirror in mirrors:
                mirror.log(event)
    tb = tmp_path / "tensorboard"
    assert read_scalars(tb, "val/loss") == [(2, pytest.approx(5.4)), (4, pytest.approx(4.9))]
    assert read_scalars(tb, "train/lr") == [(2, pytest.approx(1e-3)), (4, pytest.approx(5e-4))]
    assert read_scalars(tb, "train/grad_norm") == [(2, 0.75), (4, 0.5)]
    _, rows = read_wandb(tmp_path / tracking.report(plan, tmp_path).wandb.dir)
    assert [(r["_step"], r["val/loss"]) for r in rows if "val/loss" in r] == [(2, 5.4), (4, 4.9)]
    assert [(r["_step"], r["train/lr"], r["train/grad_norm"]) for r in rows if "train/lr" in r] == [
        (2, 1e-3, 0.75), (4, 5e-4, 0.5)]
