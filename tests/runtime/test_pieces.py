"""Single-process checks of the runtime's pieces: schedule, data order, shards, triage, measures."""

from __future__ import annotations

import struct

import pytest
import torch

from megaspec.runtime.contract import errors, gpus
from megaspec.runtime.contract.presets import PRESETS, num_params
from megaspec.runtime.contract.rank_status import RankState
from megaspec.runtime.contract.receipt import Receipt
from megaspec.runtime.evidence import acceptance, triage
from megaspec.runtime.rank import provenance
from megaspec.runtime.state import cachestate
from megaspec.runtime.state.data import BatchSlice, SyntheticTokens, TokenShards, stage
from megaspec.runtime.train import measure
from megaspec.runtime.train.bench import bus_factor
from megaspec.runtime.train.loop import lr_at
from megaspec.runtime.train.model import build_model

from .conftest import make_plan, require_seed
from .test_receipt import small_receipt


def test_lr_warms_up_then_decays_to_the_floor():
    plan = make_plan(steps=20, train={"lr": 1.0, "min_lr_ratio": 0.1})
    assert plan.train.lr_warmup_steps == 2  # lower: a tenth of the steps
    assert [lr_at(plan, s) for s in (1, 2)] == [0.5, 1.0]
    assert lr_at(plan, 20) == pytest.approx(0.1)
    assert lr_at(plan, 3) > lr_at(plan, 6) > lr_at(plan, 9)


def test_every_world_size_covers_the_same_samples_per_step():
    def samples(world: int, micro: int) -> set[int]:
        accum = 8 // (micro * world)
        return {BatchSlice(micro, 16, accum, world, 8, r).first_sample(3, m) + k
                for r in range(world) for m in range(accum) for k in range(micro)}

    assert samples(1, 8) == samples(2, 2) == samples(4, 1) == set(range(24, 32))


def test_synthetic_tokens_depend_only_on_the_global_index():
    src = SyntheticTokens(vocab_size=256, seq_len=8, seed=1)
    assert torch.equal(src.rows(5, 3)[1], src.rows(6, 1)[0])
    row = src.rows(0, 1)[0]
    assert len(set(((row[1:] - row[:-1]) % 256).tolist())) == 1  # an arithmetic progression: learnable


def test_token_shards_read_llmc_headers_and_raw_files(tmp_path):
    header = struct.pack("<3i", 20240520, 1, 10) + bytes(256 * 4 - 12)
    (tmp_path / "a.bin").write_bytes(header + struct.pack("<10H", *range(10)))
    (tmp_path / "b.bin").write_bytes(struct.pack("<7H", *range(100, 107)))
    shards = TokenShards(str(tmp_path), "uint16", seq_len=4)
    assert shards.windows == [2, 1] and shards.num_samples() == 3
    assert shards.rows(1, 2).tolist() == [[4, 5, 6, 7, 8], [100, 101, 102, 103, 104]]
    assert shards.tokens_dropped == (10 - 8) + (7 - 4)


def test_stage_copies_the_cold_source_into_the_hot_path(tmp_path):
    (tmp_path / "bucket").mkdir()
    tokens = struct.pack("<50H", *range(50))
    (tmp_path / "bucket" / "a.bin").write_bytes(tokens)
    plan = make_plan(data={"source": "shards", "path": str(tmp_path / "vol"), "stage_from": str(tmp_path / "bucket")})
    staged = stage(plan)
    assert (staged["staged_bytes"], (tmp_path / "vol" / "a.bin").read_bytes()) == (100, tokens)
    assert (staged["num_files"], staged["num_tokens"]) == (1, 50)
    assert staged["staged_s"] >= 0 and stage(make_plan()) == {}


def test_model_init_is_deterministic_and_matches_the_preset_count():
    dims = PRESETS["tiny"]
    a, b = build_model(dims, 7, torch.device("cpu")), build_model(dims, 7, torch.device("cpu"))
    assert sum(p.numel() for p in a.parameters()) == num_params(dims)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def status(rank: int, phase: str, last_step: int = 0, error: dict | None = None) -> RankState:
    return RankState.model_validate({"rank": rank, "phase": phase, "last_step": last_step,
                                     **({"error": error} if error else {})})


def err(code: str, ns: int, stage: str = "train") -> dict:
    return {"code": code, "stage": stage, "step": 3, "failed_ns": ns, "message": f"{code} message"}


def test_triage_names_the_rank_that_raised_not_the_peer():
    statuses = {0: status(0, "train", 2, err("MS803", 2)), 1: status(1, "train", 2, err("MS802", 5))}
    assert triage.attribute(statuses, {0: 1})["rank"] == 1


def test_triage_names_the_staller_not_the_waiter():
    statuses = {0: status(0, "first-step", 0, err("MS803", 1, "first-step")), 1: status(1, "compile")}
    culprit = triage.attribute(statuses, {0: 1})
    assert (culprit["rank"], culprit["stage"], culprit["code"]) == (1, "compile", "MS803")
    assert "stalled in `compile`" in culprit["message"] and "waited in `first-step`" in culprit["message"]


def test_triage_names_the_silent_rank_when_progress_is_equal():
    statuses = {r: status(r, "train", 2, err("MS803", r)) for r in (0, 2, 3)} | {1: status(1, "train", 2)}
    culprit = triage.attribute(statuses, {0: 1})
    assert (culprit["rank"], culprit["step"]) == (1, 3) and "waited" in culprit["message"]


def test_triage_names_a_rank_killed_without_a_python_error():
    statuses = {0: status(0, "train", 4, err("MS803", 1)), 1: status(1, "train", 4)}
    assert triage.attribute(statuses, {1: -9}) | {"message": ""} == {
        "rank": 1, "code": "MS802", "stage": "train", "step": 5, "message": ""}


def test_error_codes_classify_peer_symptoms():
    assert errors.code_for(RuntimeError("[gloo] Timed out waiting 5000ms for recv")) == "MS803"
    assert errors.code_for(RuntimeError("boom")) == "MS802"
    assert errors.code_for(errors.NonFiniteLossError(4, float("nan"))) == "MS801"


def test_mfu_uses_the_observed_gpu_peak_and_none_on_cpu():
    clock = measure.StepClock(num_excluded=1, tokens_per_step=1000, step_times_s={1: 9.0, 2: 0.5, 3: 0.5})
    gpu = measure.summarize(clock, 1, 10**9, "NVIDIA H200", "cuda")
    assert gpu["tokens_per_s"] == 2000 and gpu["peak_flop_per_s"] == 989e12
    assert gpu["mfu_pct"] == pytest.approx(100 * 2000 * 1e9 / 989e12)
    assert measure.summarize(clock, 1, 10**9, "cpu", "cpu")["mfu_pct"] is None
    assert gpus.peak_flops("NVIDIA B200") == 2.25e15 and gpus.peak_flops("Tesla V100") is None


def test_bus_bandwidth_factors_follow_nccl_tests():
    assert bus_factor("all_reduce", 8) == 2 * 7 / 8 and bus_factor("all_gather", 8) == 7 / 8


def test_hardware_shows_an_h100_request_served_by_an_h200():
    plan = make_plan(2, gpu="H100")
    hw = provenance.describe_hardware(plan, ["NVIDIA H200", "NVIDIA H200"])
    assert (hw.observed_gpu_count, hw.matches_request) == (2, False)
    assert provenance.describe_hardware(plan, ["NVIDIA H100 80GB HBM3"] * 2).matches_request is True


@pytest.mark.parametrize(("requested", "devices", "matches"), [
    ("A100", ["NVIDIA A100-SXM4-40GB"], True),  # what `A100` names without an upgrade
    ("A100", ["NVIDIA A100-SXM4-80GB"], False),  # the 80 GB card is an upgrade, as H100 -> H200 is
    ("A100-80GB", ["NVIDIA A100 80GB PCIe"], True),
    ("A10", ["NVIDIA A10"], True), ("A10", ["NVIDIA A10G"], True),
    ("B200+", ["NVIDIA B300"], True), ("B200+", ["NVIDIA B200"], True), ("B200", ["NVIDIA B300"], False),
    ("H100", ["NVIDIA H100 80GB HBM3", "NVIDIA H200"], False),  # one rank's card is enough to say so
])
def test_hardware_match_reads_the_one_gpu_table(requested, devices, matches):
    plan = make_plan(len(devices), gpu=requested)
    assert provenance.describe_hardware(plan, devices).matches_request is matches


def test_cache_state_is_judged_from_files(tmp_path):
    assert cachestate.count_cache_files(tmp_path) == {"fxgraph": 0, "aotautograd": 0}
    (tmp_path / "fxgraph" / "ab").mkdir(parents=True)
    (tmp_path / "fxgraph" / "ab" / "entry").write_text("x")
    pre = cachestate.count_cache_files(tmp_path)
    assert (cachestate.judge_state(pre, False), cachestate.judge_state({"fxgraph": 0}, False)) == ("warm", "cold")
    assert cachestate.agreed_state([{"state": "warm"}, {"state": "cold"}]) == ("mixed", False)


def test_require_seed_without_a_seed_fails_before_training(tmp_path):
    plan = make_plan(**require_seed(tmp_path / "missing"))
    with pytest.raises(errors.CacheSeedMissingError):
        cachestate.restore_seed_dir(plan, tmp_path / "cache")


def test_verdict_checks_bound_and_reference(tmp_path):
    from megaspec.runtime.contract.receipt import write_receipt

    ref = write_receipt(tmp_path / "ref.json", small_receipt(losses=[5.5, 5.25]))
    plan = make_plan(validate={"finite_loss": True, "max_final_loss": 5.3, "reference_receipt": str(ref),
                               "loss_rtol": 1e-6})
    ok = acceptance.evaluate(plan, small_receipt(losses=[5.5, 5.25]))
    bad: Receipt = small_receipt(losses=[5.5, 5.4])
    assert ok.passed and ok.checks == {"losses_recorded": True, "finite_loss": True, "final_loss_below_max": True,
                                       "matches_reference": True}
    verdict = acceptance.evaluate(plan, bad)
    assert not verdict.passed and len(verdict.reasons) == 2



def _shard(path, ids, *, wide=False, header_claims=None):
    body = struct.pack(f"<{len(ids)}{'I' if wide else 'H'}", *ids)
    if header_claims is not None:
        body = struct.pack("<3i", 20240801 if wide else 20240520, 1, header_claims) + bytes(1024 - 12) + body
    path.write_bytes(body)
    return path


@pytest.mark.parametrize(("write", "problem"), [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "holds no shard files"),
    (lambda d: (d.mkdir(), (d / "a.bin").write_bytes(b"")), "is empty"),
    (lambda d: (d.mkdir(), _shard(d / "a.bin", [1] * 20)), "holds 20 tokens, less than one window"),
    (lambda d: (d.mkdir(), (d / "a.bin").write_bytes(b"\x01" * 81)), "not a whole number of uint16 tokens"),
    (lambda d: (d.mkdir(), _shard(d / "a.bin", [1] * 40, header_claims=400)), "claims 400 tokens but the file holds 40"),
    (lambda d: (d.mkdir(), _shard(d / "a.bin", [1] * 39 + [300])), "token id 300, but the model's vocabulary has 256"),
    (lambda d: (d.mkdir(), _shard(d / "a.bin", [1] * 39 + [70000], wide=True, header_claims=40)), "token id 70000"),
])
def test_bad_shards_are_one_clear_line_each(tmp_path, write, problem):
    from megaspec.runtime.state.data_check import BadDataError, check_shards

    write(tmp_path / "shards")
    with pytest.raises(BadDataError, match=problem) as caught:
        check_shards(str(tmp_path / "shards"), "uint16", seq_len=32, vocab_size=256)
    assert (caught.value.code, caught.value.stage) == ("MS813", "init") and "\n" not in str(caught.value)


def test_good_shards_pass_the_check_and_read_the_same_tokens(tmp_path):
    from megaspec.runtime.state.data_check import check_shards

    (tmp_path / "s").mkdir()
    _shard(tmp_path / "s" / "a.bin", list(range(40)))
    _shard(tmp_path / "s" / "b.bin", list(range(100, 140)), wide=True, header_claims=40)
    assert check_shards(str(tmp_path / "s"), "uint16", seq_len=32, vocab_size=256) == {"num_files": 2,
                                                                                      "num_tokens": 80,
                                                                                      "num_windows": 2}
    shards = TokenShards(str(tmp_path / "s"), "uint16", seq_len=32)
    assert shards.rows(1, 1)[0].tolist() == list(range(100, 133))


def test_bad_data_fails_the_run_before_any_rank_starts(tmp_path):
    from megaspec.runtime.launch.entry import run_plan

    (tmp_path / "s").mkdir()
    _shard(tmp_path / "s" / "a.bin", [5] * 600 + [9999])
    receipt = run_plan(make_plan(2, data={"source": "shards", "path": str(tmp_path / "s")}),
                       tmp_path / "run")
    error = receipt["error"]
    assert (error["code"], error["stage"], error["rank"]) == ("MS813", "init", None) and "9999" in error["message"]
    assert not (tmp_path / "run" / "logs").exists()
