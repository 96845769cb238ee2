"""End-to-end runs through the elastic launcher on CPU/gloo: training, parity, faults, resume."""

from __future__ import annotations

import json
import signal
import struct

import jsonschema
import pytest

from megaspec.runtime.contract.receipt import SCHEMA_PATH, read_receipt
from megaspec.runtime.launch.entry import main as launch_main
from megaspec.runtime.launch.entry import run_plan

from .conftest import make_plan, timeouts_fired_ms

pytestmark = pytest.mark.slow
STEPS = 8


def train(tmp_path, name: str, ranks: int = 2, **overrides) -> dict:
    return run_plan(make_plan(ranks, steps=STEPS, **overrides), tmp_path / name)


def assert_valid(receipt: dict) -> None:
    jsonschema.validate(receipt, json.loads(SCHEMA_PATH.read_text()))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[dict, object]:
    """2 ranks, checkpoints every 3 steps: the reference for parity, determinism and resume."""
    root = tmp_path_factory.mktemp("baseline")
    events: list[dict] = []
    plan = make_plan(2, steps=STEPS, checkpoint={"every": 3, "resume": "auto"},
                     plan={"checkpoint": {"dir": str(root / "ckpt")}})
    receipt = run_plan(plan, root / "run", on_event=events.append)
    return receipt, events


def test_two_ranks_train_and_the_receipt_is_complete(baseline, tmp_path):
    receipt, events = baseline
    assert receipt["status"] == "ok", receipt["error"]
    assert_valid(receipt)
    losses = receipt["losses"]
    assert len(losses) == STEPS and losses[-1] < losses[0] - 0.1
    assert [e["step"] for e in events] == list(range(1, STEPS + 1))
    assert receipt["steps"] == {"planned": STEPS, "completed": STEPS, "warmup_excluded": 2, "measured": STEPS - 2,
                                "resumed_from": None}
    assert receipt["metrics"]["tokens_per_s"] > 0 and receipt["metrics"]["mfu_pct"] is None
    assert [r["phase"] for r in receipt["per_rank"]] == ["done", "done"]
    assert receipt["startup"]["state"] == "uncompiled" and receipt["diagnostics"] == []
    assert all(r["first_forward_s"] > 0 for r in receipt["per_rank"])
    assert receipt["hardware"]["observed_devices"] == ["cpu"]
    assert receipt["distributed"]["world_size"] == 2 and receipt["data"]["path_class"] == "synthetic"
    assert receipt["checkpoint"]["saved_steps"] == [3, 6]


@pytest.mark.parametrize("ranks", [1, 4])
def test_one_and_four_ranks_match_two(baseline, tmp_path, ranks):
    receipt = train(tmp_path, f"r{ranks}", ranks)
    assert receipt["status"] == "ok", receipt["error"]
    assert_valid(receipt)
    assert receipt["losses"] == pytest.approx(baseline[0]["losses"], abs=1e-5)


def test_same_seed_twice_gives_identical_losses_through_the_cli(baseline, tmp_path, capsys):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(make_plan(2, steps=STEPS).to_json())
    assert launch_main(["--plan", str(plan_path), "--run-dir", str(tmp_path / "cli")]) == 0
    assert "(ok)" in capsys.readouterr().out
    assert read_receipt(tmp_path / "cli" / "receipt.json").losses == baseline[0]["losses"]


def test_a_rank_that_raises_is_named_with_its_stage_and_error_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MEGASPEC_FAULT", "1:train:3:raise")
    receipt = train(tmp_path, "raise")
    error = receipt["error"]
    assert receipt["status"] == "error"
    assert (error["rank"], error["stage"], error["step"], error["code"]) == (1, "train", 3, "MS802")
    assert "injected failure" in json.loads(open(error["error_file"]).read())["message"]["message"]
    assert read_receipt(tmp_path / "raise" / "receipt.json").error.rank == 1
    assert_valid(receipt)


def test_a_stalled_rank_is_named_not_the_waiter(tmp_path, monkeypatch):
    monkeypatch.setenv("MEGASPEC_FAULT", "1:compile:sleep")
    receipt = train(tmp_path, "stall", distributed={"init_timeout": 8})
    assert timeouts_fired_ms(tmp_path / "stall") == {8000}  # the init timeout ended it, not the hour-long stall
    error = receipt["error"]
    assert (error["rank"], error["stage"], error["code"]) == (1, "compile", "MS803")
    assert [r["phase"] for r in receipt["per_rank"]] == ["first-step", "compile"]


def test_a_killed_run_resumes_to_the_same_losses(baseline, tmp_path, monkeypatch):
    ckpt = {"checkpoint": {"every": 3, "resume": "auto"}, "plan": {"checkpoint": {"dir": str(tmp_path / "ckpt")}}}
    monkeypatch.setenv("MEGASPEC_FAULT", "1:train:5:kill")
    killed = train(tmp_path, "killed", **ckpt)
    error = killed["error"]
    assert (error["rank"], error["code"], error["stage"], error["step"]) == (1, "MS802", "train", 5)
    assert "without a Python error" in error["message"] and killed["checkpoint"]["saved_steps"] == [3]
    monkeypatch.delenv("MEGASPEC_FAULT")
    resumed = train(tmp_path, "resumed", **ckpt)
    assert resumed["status"] == "ok", resumed["error"]
    assert resumed["steps"]["resumed_from"] == 3 and resumed["checkpoint"]["resumed_from"] == 3
    assert resumed["losses"] == baseline[0]["losses"]


def test_a_checkpoint_of_another_experiment_is_never_resumed_but_a_longer_run_continues_it(baseline, tmp_path):
    """A Modal checkpoint folder is named after the spec: the same spec applied again with another learning
    rate found the earlier experiment's checkpoints and trained its weights under the new settings, silently.
    Each checkpoint records its lineage; another one ends the run before any step, the folder untouched."""
    import shutil

    shutil.copytree(baseline[0]["checkpoint"]["dir"], tmp_path / "ckpt")  # baseline: 8 steps, saved 3 and 6
    before = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    ckpt = {"checkpoint": {"every": 3, "resume": "auto"}, "plan": {"checkpoint": {"dir": str(tmp_path / "ckpt")}}}
    other = train(tmp_path, "other", train={"lr": 1e-3}, **ckpt)
    assert (other["status"], other["error"]["stage"], other["steps"]["completed"]) == ("error", "checkpoint", 0)
    assert "was saved by another experiment" in other["error"]["message"] and other["losses"] == []
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == before
    longer = run_plan(make_plan(2, steps=STEPS + 2, train={"lr_warmup_steps": 0}, **ckpt),  # the baseline's warmup
                      tmp_path / "longer")  # only `train.steps` differs
    assert longer["status"] == "ok", longer["error"]
    assert longer["steps"]["resumed_from"] == 6 and len(longer["losses"]) == STEPS + 2


def test_after_a_run_the_signal_handlers_are_the_callers_again(tmp_path):
    """torch elastic leaves its handlers installed: a Ctrl-C after a run (between a sweep's runs, in a
    test process) raised its SignalException instead of KeyboardInterrupt."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    before = [signal.getsignal(s) for s in signals]
    receipt = run_plan(make_plan(2, steps=2), tmp_path / "run")
    assert receipt["status"] == "ok" and [signal.getsignal(s) for s in signals] == before


def test_insufficient_shards_fail_before_training(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.bin").write_bytes(struct.pack("<512H", *(i % 256 for i in range(512))))  # 15 windows of 32
    receipt = train(tmp_path, "short", data={"source": "shards", "path": str(shards)})
    error = receipt["error"]
    assert (error["code"], error["stage"]) == ("MS805", "init")
    assert all(r["last_step"] == 0 for r in receipt["per_rank"])


def test_validate_lane_gives_a_verdict_and_no_throughput(baseline, tmp_path):
    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps(baseline[0]))
    receipt = train(tmp_path, "validate", lane="validate",
                    validate={"finite_loss": True, "max_final_loss": 6.0, "reference_receipt": str(reference),
                              "loss_rtol": 1e-5})
    assert receipt["verdict"]["passed"], receipt["verdict"]
    assert receipt["metrics"]["tokens_per_s"] is None and receipt["metrics"]["final_loss"] is not None


def test_bench_lane_measures_collectives_and_gemm(tmp_path):
    receipt = train(tmp_path, "bench", lane="bench",
                    bench={"ops": ["all_reduce", "all_gather", "gemm"], "sizes": [4096], "iters": 3,
                           "warmup_iters": 1, "gemm_dims": [64]})
    assert receipt["status"] == "ok", receipt["error"]
    results = {r["op"]: r for r in receipt["bench"]["results"]}
    # 2 ranks: all_reduce busbw = algbw * 2(n-1)/n = algbw; all_gather busbw = algbw * (n-1)/n
    assert results["all_reduce"]["busbw_gbps"] == pytest.approx(results["all_reduce"]["algbw_gbps"])
    assert results["all_gather"]["busbw_gbps"] == pytest.approx(results["all_gather"]["algbw_gbps"] / 2)
    assert results["gemm"]["tflops"] > 0 and receipt["bench"]["backend"] == "gloo"
    assert_valid(receipt)


def test_the_timeout_is_shortened_after_the_first_step(tmp_path, monkeypatch):
    """init_timeout_s covers start-up only: a stall at step 3 ends after timeout_s, not init_timeout_s."""
    monkeypatch.setenv("MEGASPEC_FAULT", "1:train:3:sleep")
    receipt = train(tmp_path, "late-stall", distributed={"init_timeout": 300, "timeout": 4})
    assert timeouts_fired_ms(tmp_path / "late-stall") == {4000}  # the waiter gave up after timeout_s
    error = receipt["error"]
    assert (error["rank"], error["code"], error["stage"]) == (1, "MS803", "train")
    assert [r["last_step"] for r in receipt["per_rank"]] == [2, 2]


def test_compile_cache_state_is_cold_then_seeded_from_files_and_counters(tmp_path):
    """One rank, per-block compile on CPU: a cold start, then a `warm` start seeded from the first run's plain
    cache directory (a seed made by `megaspec cache seed` is tests/runtime/test_seed.py's)."""
    compiled = {"train": {"compile": True}}
    cold = run_plan(make_plan(1, global_batch=2, steps=3, plan={"cache": {"dir": str(tmp_path / "cache-a")}}, **compiled),
                    tmp_path / "cold")
    assert cold["status"] == "ok", cold["error"]
    assert cold["startup"]["state"] == "cold" and cold["per_rank"][0]["cache"]["fxgraph_misses"] > 0
    seeded_plan = make_plan(1, global_batch=2, steps=3, **compiled, cache={"policy": "warm"},
                            plan={"cache": {"seed": str(tmp_path / "cache-a"), "dir": str(tmp_path / "cache-b")}})
    seeded = run_plan(seeded_plan, tmp_path / "seeded")
    cache = seeded["per_rank"][0]["cache"]
    assert (seeded["startup"]["state"], seeded["startup"]["seed_restored"]) == ("seeded", True)
    assert cache["pre_files"]["fxgraph"] > 0 and cache["fxgraph_hits"] > 0 and cache["fxgraph_misses"] == 0
    assert seeded["losses"] == cold["losses"]
