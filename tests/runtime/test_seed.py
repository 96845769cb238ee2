"""The compile-cache seed: what it is built for, the refusals before training, and (slow) a real
seed made by `megaspec cache seed` that a 2-rank `require-seed` run restores and hits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megaspec.runtime.contract import seed_file as seed
from megaspec.runtime.contract.errors import CacheSeedMismatchError, CacheSeedMissingError
from megaspec.runtime.state import cachestate
from tests.runtime.conftest import make_plan

ROOT = Path(__file__).resolve().parents[2]


def compiled_plan(seed_dir: Path, policy: str = "require-seed", **train) -> object:
    return make_plan(seq_len=64, train={"compile": True, **train}, cache={"policy": policy, "seed": str(seed_dir)})


def write_seed(seed_dir: Path, plan, **key_changes) -> None:
    """A seed directory as `make_seed` leaves it (manifest + one cache file), keyed for `plan`.
    The manifest is real data; no torch compile is needed to test the checks that read it."""
    key = seed.key_for(plan, "cpu").model_copy(update=key_changes)
    (seed_dir / seed.INDUCTOR_DIR / "fxgraph" / "ab").mkdir(parents=True)
    (seed_dir / seed.INDUCTOR_DIR / "fxgraph" / "ab" / "entry").write_text("cached")
    manifest = seed.SeedManifest(key=key, created_at="2026-12-01T00:00:00Z", compile_s=1.0, artifacts_bytes=0,
                                 inductor_files=1)
    (seed_dir / seed.SEED_FILE).write_text(manifest.model_dump_json())


def test_the_key_names_what_the_graphs_depend_on():
    plan = compiled_plan(Path("/s"), activation_checkpointing="full")
    key = seed.key_for(plan, "cpu")
    assert key.model == plan.model.dims().as_dict() and (key.micro_batch, key.seq_len) == (4, 64)
    assert (key.precision, key.activation_checkpointing, key.device) == ("fp32", "full", "cpu")
    assert key.torch.split("+")[0].count(".") == 2


def test_a_matching_seed_is_restored_into_the_cache_dir(tmp_path):
    plan = compiled_plan(tmp_path / "seed")
    write_seed(tmp_path / "seed", plan)
    assert cachestate.restore_seed_dir(plan, tmp_path / "cache") is True
    assert (tmp_path / "cache" / "fxgraph" / "ab" / "entry").read_text() == "cached"
    assert cachestate.count_cache_files(tmp_path / "cache")["fxgraph"] == 1


def test_a_seed_for_another_run_is_refused_naming_each_difference(tmp_path):
    plan = compiled_plan(tmp_path / "seed")
    write_seed(tmp_path / "seed", plan, seq_len=2048, torch="2.8.0", device="NVIDIA H200")
    with pytest.raises(CacheSeedMismatchError) as refused:
        cachestate.restore_seed_dir(plan, tmp_path / "cache")
    message = str(refused.value)
    assert refused.value.code == "MS812" and refused.value.stage == "bootstrap"
    assert "seq_len 2048 (this run: 64)" in message and "device 'NVIDIA H200' (this run: 'cpu')" in message
    assert "torch '2.8.0'" in message and "megaspec cache seed SPEC" in message
    assert not (tmp_path / "cache").exists()


def test_warm_skips_a_seed_for_another_run_without_failing(tmp_path):
    plan = compiled_plan(tmp_path / "seed", policy="warm")
    write_seed(tmp_path / "seed", plan, micro_batch=8)
    assert cachestate.restore_seed_dir(plan, tmp_path / "cache") is False


@pytest.mark.parametrize("make", ["nothing", "empty dir"])
def test_require_seed_without_a_made_seed_says_how_to_make_one(tmp_path, make):
    if make == "empty dir":
        (tmp_path / "seed").mkdir()
    with pytest.raises(CacheSeedMissingError) as missing:
        cachestate.restore_seed_dir(compiled_plan(tmp_path / "seed"), tmp_path / "cache")
    assert missing.value.code == "MS807" and "megaspec cache seed SPEC" in str(missing.value)


@pytest.mark.slow
def test_a_real_seed_makes_a_two_rank_run_start_seeded(tmp_path):
    """One real Inductor compile for the seed, one 2-rank run that must hit it on every rank."""
    from click.testing import CliRunner

    from megaspec.compiler.cli import cli

    spec = tmp_path / "tiny.yaml"
    spec.write_text((ROOT / "specs" / "cpu-local.yaml").read_text()
                    .replace("compile: false", "compile: true").replace("steps: 40", "steps: 4")
                    .replace("warmup_steps: 5", "warmup_steps: 1").replace("timeout: 2m", "timeout: 10m")
                    + f"cache: {{policy: require-seed, seed: {tmp_path / 'seed'}}}\n")
    runner = CliRunner()
    made = runner.invoke(cli, ["cache", "seed", str(spec)])
    assert made.exit_code == 0, made.output
    assert "built for: torch" in made.output and (tmp_path / "seed" / "artifacts.bin").stat().st_size > 0
    ran = runner.invoke(cli, ["apply", str(spec), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"),
                              "--no-progress"])
    assert ran.exit_code == 0, ran.output
    receipt = json.loads(next((tmp_path / "runs").glob("*/receipt.json")).read_text())
    assert receipt["startup"]["state"] == "seeded" and receipt["startup"]["ranks_agree"]
    for rank in receipt["per_rank"]:
        assert rank["cache"]["fxgraph_hits"] > 0 and rank["cache"]["fxgraph_misses"] == 0
