"""Every GPU spec's rehearsal keeps what a hang or a crash depends on (world size, seq_len, compile,
activation checkpointing, checkpoints that fire, resume, the user's own model) and shrinks the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.codegen.rehearsal import REHEARSAL_COMPILE_BACKEND
from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.discover import spec_files
from tests.conftest import REPO_ROOT

GPU_SPECS = [p for p in spec_files(REPO_ROOT / "specs") if "gpu:" in p.read_text()]


def real_and_rehearsal(path: Path):
    checked = check_spec(path)
    errors = [f"{d.code} {d.message}" for d in checked.diagnostics if d.is_error]
    assert checked.spec is not None and not errors, errors
    return plan_for(checked), plan_for(checked, target="local")


def assert_kept(gpu, cpu) -> None:
    assert cpu.run.rehearsal and cpu.distributed.device == "cpu"
    assert cpu.distributed.world_size == gpu.distributed.world_size
    assert cpu.train.seq_len == gpu.train.seq_len
    assert (cpu.train.compile, cpu.train.activation_checkpointing) == (gpu.train.compile, gpu.train.activation_checkpointing)
    assert cpu.train.compile_backend == (REHEARSAL_COMPILE_BACKEND if gpu.train.compile else "inductor")
    assert (cpu.train.micro_batch, cpu.train.grad_accum, cpu.train.global_batch) == (1, 1, cpu.distributed.world_size)
    assert cpu.checkpoint.resume == gpu.checkpoint.resume
    if gpu.checkpoint.every is None:
        assert cpu.checkpoint.every is None and not any("checkpoint" in s for s in cpu.run.substitutions)
    else:  # fires before the last step, where the loop saves; said with the steps it fires at
        assert cpu.checkpoint.dir and cpu.checkpoint.every < cpu.train.steps
        assert f"saved at step(s) {cpu.checkpoint.every}" in cpu.run.substitutions[-1]


@pytest.mark.parametrize("path", GPU_SPECS, ids=lambda p: p.name)
def test_every_gpu_spec_rehearses_on_its_topology_and_code_paths(path: Path):
    gpu, cpu = real_and_rehearsal(path)
    assert_kept(gpu, cpu)
    assert cpu.model.preset == "tiny" and cpu.train.steps <= 4


def test_a_users_own_model_is_rehearsed_as_written(tmp_path: Path):
    shutil.copytree(REPO_ROOT / "examples" / "own-model" / "src", tmp_path / "src")
    text = (REPO_ROOT / "examples" / "own-model" / "cpu.yaml").read_text()
    text = text.replace("target: local\nresources: {ranks: 2}", "target: modal\nresources: {gpu: \"H100!:2\"}\n"
                        "cache: {policy: require-seed, seed: /vol/cache/seed}\n"
                        "volumes: {cache: {name: c, mount: /vol/cache}, checkpoints: {name: k, mount: /vol/ckpt}}")
    text = text.replace("  precision: fp32\n", "  compile: true\n").replace("data: {source: shards, path: /tmp/own-model-shards}\n", "")
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("eval:")) + "\n"
    (tmp_path / "gpu.yaml").write_text(text)
    gpu, cpu = real_and_rehearsal(tmp_path / "gpu.yaml")
    assert_kept(gpu, cpu)
    kept = ("entry", "args", "code_sha256")  # its code folders are where they are here, not in the image
    assert [getattr(cpu.model.user, k) for k in kept] == [getattr(gpu.model.user, k) for k in kept]
    assert cpu.model.preset == gpu.model.preset
    assert "your model `ownmodels.gpt:build` kept as written (`model.args` unchanged)" in cpu.run.substitutions
