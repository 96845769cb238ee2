"""The user's own model (examples/own-model's GPT: tied embeddings, a causal-mask buffer) trained by
megaspec's FSDP2 loop through the elastic launcher on 1, 2 and 4 CPU ranks, against an independent
one-process loop written here (same init, same data, fp32, plain AdamW, the same schedule), and
resumed after a kill. The bootstrap failures end as MS814 before any step."""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from megaspec.compiler.runs.receipt_view import error_lines
from megaspec.runtime.contract.receipt import Receipt
from megaspec.runtime.contract.shards import llmc_header
from megaspec.runtime.launch.entry import run_plan
from tests.conftest import REPO_ROOT

from .conftest import make_plan

pytestmark = pytest.mark.slow
CODE = REPO_ROOT / "examples" / "own-model" / "src"
ARGS = {"vocab_size": 64, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 16}
STEPS, GLOBAL_BATCH, SEQ_LEN, LR, SEED = 6, 8, 16, 3e-3, 1234


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """One llm.c shard of random tokens below the vocabulary: enough for STEPS steps and a few more."""
    folder = tmp_path_factory.mktemp("shards")
    tokens = np.random.default_rng(0).integers(0, ARGS["vocab_size"], (STEPS + 2) * GLOBAL_BATCH * SEQ_LEN + 1)
    (folder / "shard_000000.bin").write_bytes(llmc_header("uint16", len(tokens)) + tokens.astype("<u2").tobytes())
    return folder, tokens


def user_plan(ranks: int, shard_dir, *, plan=None, **spec):
    model = {"entry": "ownmodels.gpt:build", "code": [str(CODE)], "args": ARGS, "vocab_size": ARGS["vocab_size"]}
    return make_plan(ranks, steps=STEPS, global_batch=GLOBAL_BATCH, seq_len=SEQ_LEN, preset=None, model=model,
                     data={"source": "shards", "path": str(shard_dir)}, plan=plan, **spec)


def reference_losses(tokens: np.ndarray, steps: int) -> tuple[list[float], int]:
    """One process, no megaspec: build, seed, init_weights, AdamW with linear warmup then cosine, clipping."""
    sys.path.insert(0, str(CODE))
    try:
        gpt = importlib.import_module("ownmodels.gpt")
    finally:
        sys.path.remove(str(CODE))
    model = gpt.build(**ARGS)
    torch.manual_seed(SEED)
    with torch.no_grad():
        model.init_weights()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.0)
    warmup = min(100, steps // 10)
    losses = []
    for step in range(1, steps + 1):
        progress = (step - warmup) / max(1, steps - warmup)
        lr = LR * step / max(1, warmup) if step <= warmup else LR * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        first = (step - 1) * GLOBAL_BATCH
        rows = torch.stack([torch.from_numpy(tokens[(first + j) * SEQ_LEN:(first + j + 1) * SEQ_LEN + 1].astype(np.int64))
                            for j in range(GLOBAL_BATCH)])
        logits = model(rows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses, sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def reference(shard):
    return reference_losses(shard[1], STEPS)


@pytest.mark.parametrize(("ranks", "checkpointing"), [(1, "none"), (2, "none"), (4, "none"), (2, "full")])
def test_the_users_model_under_fsdp2_matches_a_one_process_loop_at_every_step(shard, reference, tmp_path, ranks,
                                                                               checkpointing):
    """Activation checkpointing wraps each of the user's `layers` and recomputes the same numbers."""
    plan = user_plan(ranks, shard[0], train={"activation_checkpointing": checkpointing})
    receipt = run_plan(plan, tmp_path / "run")
    assert receipt["status"] == "ok", receipt["error"]
    losses, num_params = reference
    assert receipt["losses"] == pytest.approx(losses, abs=1e-5)
    assert receipt["model"]["num_params"] == num_params  # the tied head counted once
    assert receipt["model"]["flops_per_token"] > 0 and receipt["metrics"]["flops_per_token"] > 0
    assert receipt["parallelism"]["num_fsdp_units"] == ARGS["n_layers"] + 1


def test_a_killed_run_of_the_users_model_resumes_bit_identical(shard, tmp_path, monkeypatch):
    ckpt = {"checkpoint": {"every": 2, "resume": "auto"}, "plan": {"checkpoint": {"dir": str(tmp_path / "ckpt")}}}
    whole = run_plan(user_plan(2, shard[0], checkpoint=ckpt["checkpoint"],
                               plan={"checkpoint": {"dir": str(tmp_path / "whole")}}), tmp_path / "whole-run")
    assert whole["status"] == "ok", whole["error"]
    monkeypatch.setenv("MEGASPEC_FAULT", "1:train:4:kill")
    killed = run_plan(user_plan(2, shard[0], **ckpt), tmp_path / "killed")
    assert killed["status"] == "error" and killed["checkpoint"]["saved_steps"] == [2]
    monkeypatch.delenv("MEGASPEC_FAULT")
    resumed = run_plan(user_plan(2, shard[0], **ckpt), tmp_path / "resumed")
    assert resumed["status"] == "ok", resumed["error"]
    assert resumed["checkpoint"]["resumed_from"] == 2
    assert resumed["losses"] == whole["losses"]  # bit for bit: tied weights and the buffer survived the checkpoint


@pytest.fixture(scope="module")
def broken_code(tmp_path_factory):
    """A code folder of models that break the contract, one way each."""
    folder = tmp_path_factory.mktemp("code")
    (folder / "broken.py").write_text(BROKEN, encoding="utf-8")
    return folder


BROKEN = '''import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, vocab_size=64, width=None, real_only_fail=False):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 8)
        self.layers = nn.ModuleList([nn.Linear(8, 8)])
        self.head = nn.Linear(8, width or vocab_size)
        self.real_only_fail = real_only_fail

    def forward(self, tokens):
        if self.real_only_fail and tokens.sum().item() >= 0:
            raise ValueError("this forward fails on real tokens")
        h = self.emb(tokens)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


def raises(**kwargs):
    raise RuntimeError("no such width")


def no_layers(**kwargs):
    return nn.Linear(2, 2)


def tiny(vocab_size, width=None, real_only_fail=False, **_):
    return Tiny(vocab_size, width, real_only_fail)
'''


@pytest.mark.parametrize(("entry", "args", "words"), [
    ("missing.mod:build", {}, "module `missing.mod` of `model.entry` is not in the code folders"),
    ("broken:absent", {}, "`absent` is not a callable defined in"),
    ("broken:raises", {}, "broken.py:23): RuntimeError: no such width"),
    ("broken:no_layers", {}, "with no `layers` attribute"),
    ("broken:tiny", {"width": 5}, "expected logits `[batch, 16, 64]`"),
    ("broken:tiny", {"real_only_fail": True}, "broken.py:15): ValueError: this forward fails on real tokens"),
])
def test_a_broken_model_is_a_bootstrap_error_naming_the_users_file_before_any_step(shard, broken_code, tmp_path,
                                                                                    entry, args, words):
    broken = {"model": {"user": {"entry": entry, "code": [str(broken_code)], "args": args}}}  # past lint
    receipt = run_plan(user_plan(2, shard[0], plan=broken), tmp_path / "run")
    error = receipt["error"]
    assert receipt["status"] == "error" and error["code"] == "MS814" and error["stage"] == "bootstrap", error
    assert words in error["message"] and receipt["losses"] == []
    assert "look first at     your model's code (`model.entry`)" in "\n".join(error_lines(Receipt.model_validate(receipt)))


def test_the_example_trains_on_its_prepared_corpus_and_its_validation_loss_falls(tmp_path):
    """examples/own-model as a user runs it: `megaspec data prepare` of the shipped corpus, then the user's GPT
    on 2 ranks with `train.eval`."""
    from click.testing import CliRunner

    from megaspec.compiler.cli import cli

    shards = tmp_path / "shards"
    corpus = REPO_ROOT / "examples" / "own-model" / "corpus"
    prepared = CliRunner().invoke(cli, ["data", "prepare", str(corpus), "--tokenizer", "bytes", "--val-fraction",
                                        "0.05", "-j", "1", "-o", str(shards)])
    assert prepared.exit_code == 0, prepared.output
    model = {"entry": "ownmodels.gpt:build", "code": [str(CODE)], "vocab_size": 256,
             "args": {"vocab_size": 256, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 64}}
    plan = make_plan(2, steps=20, global_batch=8, seq_len=64, preset=None, model=model,
                     data={"source": "shards", "path": str(shards)}, train={"eval": {"every": 10, "batches": 2}})
    receipt = run_plan(plan, tmp_path / "run")
    assert receipt["status"] == "ok", receipt["error"]
    assert [e["step"] for e in receipt["eval"]] == [10, 20]
    assert receipt["eval"][-1]["loss"] < receipt["eval"][0]["loss"] < math.log(256)
