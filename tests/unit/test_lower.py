"""lower(): every default and derived value, on specs built in memory."""

from __future__ import annotations

import pytest

from megaspec.compiler.codegen.lower import lower, size_bytes, torch_version
from megaspec.compiler.diagnostics import InternalError
from megaspec.compiler.spec.gpu import parse_gpu
from megaspec.compiler.spec.model import Spec

SHA = "ab" * 32


def make(**fields) -> Spec:
    return Spec.model_validate({"megaspec": 1, "name": "t", **fields})


def plan_of(target=None, **fields):
    return lower(make(**fields), spec_path="specs/t.yaml", spec_sha256=SHA, origins={"train": "specs/t.yaml:3"},
                 target=target)


VOLS = {"cache": {"name": "c", "mount": "/vol/cache"}, "checkpoints": {"name": "k", "mount": "/vol/ckpt"},
        "data": {"name": "d", "mount": "/vol/data"}}


def test_gpu_geometry_and_strings():
    p = plan_of(resources={"gpu": "H100:8", "exact": True, "nodes": 2}, train={"micro_batch": 2, "global_batch": 64})
    assert (p.distributed.nodes, p.distributed.nproc_per_node, p.distributed.world_size) == (2, 8, 16)
    assert p.train.grad_accum == 2
    assert p.resources.modal_gpu == ["H100!:8"]
    assert (p.distributed.backend, p.distributed.device) == ("nccl", "cuda")
    assert p.modal.image.apt == ["libibverbs1"]  # rdma on a cluster


def test_fallback_list_kept_in_order_and_a100_exact():
    p = plan_of(resources={"gpu": ["H200:8", "H100:8"], "exact": True})
    assert p.resources.modal_gpu == ["H200:8", "H100!:8"]
    assert parse_gpu("A100:2").modal_string(exact=True) == "A100-40GB:2"
    assert plan_of(resources={"gpu": "a100:2", "exact": True}).resources.modal_gpu == ["A100-40GB:2"]


def test_cpu_defaults():
    p = plan_of(resources={"ranks": 2})
    assert (p.distributed.backend, p.distributed.device, p.distributed.world_size) == ("gloo", "cpu", 2)
    assert p.train.global_batch == 2 and p.train.grad_accum == 1
    assert p.train.seq_len == 128  # the tiny preset's max_seq_len
    assert p.train.lr_warmup_steps == 10  # min(100, 100 // 10)
    assert p.resources.modal_gpu == [] and p.resources.gpu_count == 0
    assert "TORCH_NCCL_ASYNC_ERROR_HANDLING" not in p.distributed.env
    assert p.distributed.run_dir_env == {}


def test_unchecked_batch_is_a_bug_not_a_silent_round():
    with pytest.raises(InternalError):
        plan_of(resources={"ranks": 3}, train={"global_batch": 4})


def test_hardening_env_for_multi_gpu_compile():
    p = plan_of(resources={"gpu": "H200:8"}, volumes=VOLS, train={"compile": True},
                image={"packages": ["torch==2.7.1"]}, distributed={"timeout": "20m"})
    env = p.distributed.env
    assert p.cache.dir == "/vol/cache/inductor/H200-torch2.7.1"
    assert env["TORCHINDUCTOR_CACHE_DIR"] == p.cache.dir and env["TRITON_CACHE_DIR"] == p.cache.dir + "/triton"
    assert env["TORCHINDUCTOR_MAX_AUTOTUNE_PRUNE_CHOICES_BASED_ON_SHARED_MEM"] == "1"
    assert env["TORCHINDUCTOR_MAX_AUTOTUNE"] == "0"
    assert env["TORCH_NCCL_ENABLE_MONITORING"] == "0"  # heartbeat off by default
    assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "3" and env["TORCH_DISTRIBUTED_DEBUG"] == "INFO"
    assert p.distributed.init_timeout_s == 2400  # max(2 x 20m, 10m) while compiling
    assert p.distributed.run_dir_env["TORCH_FR_DUMP_TEMP_FILE"] == "comm_traces/rank_"
    assert p.modal.image.packages == ["torch==2.7.1", "numpy==2.2.6", "pydantic==2.11.9"]


def test_heartbeat_on_while_compiling_gets_a_long_heartbeat():
    p = plan_of(resources={"gpu": "H100:2"}, train={"compile": True}, distributed={"heartbeat": "on", "timeout": "1h"})
    assert p.distributed.env["TORCH_NCCL_ENABLE_MONITORING"] == "1"
    assert p.distributed.env["TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC"] == "7200"


def test_single_gpu_eager_has_no_shared_mem_cap():
    p = plan_of(resources={"gpu": "H100:1"}, distributed={"autotune": True})
    assert "TORCHINDUCTOR_MAX_AUTOTUNE_PRUNE_CHOICES_BASED_ON_SHARED_MEM" not in p.distributed.env
    assert p.distributed.env["TORCHINDUCTOR_MAX_AUTOTUNE"] == "1"
    assert p.distributed.init_timeout_s == p.distributed.timeout_s


def test_state_paths_and_runs_dir():
    p = plan_of(resources={"gpu": "H100:1"}, volumes=VOLS, data={"source": "shards", "path": "/vol/data/tok"},
                checkpoint={"every": 10},
                buckets={"c": {"bucket": "bkt", "mount": "/mnt/c", "prefix": "p/"}})
    assert p.checkpoint.dir == "/vol/ckpt/t" and p.modal.runs_dir == "/vol/ckpt/megaspec-runs"
    assert p.data.path_class == "volume"
    assert [v.kind for v in p.modal.volumes] == ["cache", "checkpoints", "data"]
    q = plan_of(buckets={"c": {"bucket": "bkt", "mount": "/mnt/c"}}, data={"source": "shards", "path": "/mnt/c/x"})
    assert q.data.path_class == "bucket" and q.modal.runs_dir == "/tmp/megaspec-runs"
    assert plan_of(data={"source": "shards", "path": "/data/x"}).data.path_class == "local-disk"


def test_price_and_tags():
    p = plan_of(resources={"gpu": "H100:8", "nodes": 2}, secrets=["wandb"])
    assert p.resources.price_usd_per_hour == round((3.9492 * 8 + 32 * 0.04716 + 256 * 0.007992) * 2, 4)
    assert p.modal.tags == {"megaspec": "t", "megaspec_lane": "train", "megaspec_plan": p.sha256()[:12],
                            "megaspec_spec": SHA[:12]}
    assert plan_of(resources={"gpu": "B300:8"}).resources.price_usd_per_hour is None


def test_rehearsal_keeps_world_seq_len_and_code_paths_and_shrinks_the_rest():
    fields = dict(resources={"gpu": "H200:8"}, volumes=VOLS, preset="dense-1b", cache={"policy": "require-seed",
                  "seed": "/vol/cache/seed"}, train={"steps": 300, "warmup_steps": 30, "global_batch": 64,
                  "micro_batch": 4, "seq_len": 2048, "compile": True, "activation_checkpointing": "selective"},
                  data={"source": "shards", "path": "/vol/data/t"}, checkpoint={"every": 100})
    gpu, cpu = plan_of(**fields), plan_of(target="local", **fields)
    assert cpu.run.rehearsal and cpu.target == "local"
    assert cpu.distributed.world_size == gpu.distributed.world_size == 8
    assert (cpu.distributed.backend, cpu.distributed.device) == ("gloo", "cpu")
    # the real sequence length: the diagnostic preset takes it (its rotary tables are built that long)
    assert cpu.model.preset == "tiny" and cpu.train.seq_len == cpu.model.max_seq_len == gpu.train.seq_len == 2048
    assert (cpu.train.compile, cpu.train.compile_backend, gpu.train.compile_backend) == (True, "eager", "inductor")
    assert cpu.train.activation_checkpointing == "selective"
    assert (cpu.checkpoint.every, cpu.checkpoint.resume, cpu.checkpoint.dir) == (2, "auto", "checkpoints")
    assert (cpu.train.global_batch, cpu.train.micro_batch, cpu.train.grad_accum) == (8, 1, 1)
    assert (cpu.train.steps, cpu.train.warmup_steps, cpu.train.precision) == (4, 1, "fp32")
    assert (cpu.cache.policy, cpu.cache.dir, cpu.data.source) == ("cold", None, "synthetic")
    assert cpu.modal.volumes == [] and cpu.resources.price_usd_per_hour is None
    assert cpu.run.substitutions == [
        "GPU `H200:8` x 1 node(s) -> 8 CPU ranks (gloo)", "model preset `dense-1b` -> `tiny`",
        "train.micro_batch `4` -> `1`", "train.global_batch `64` -> `8`", "train.steps `300` -> `4`",
        "train.warmup_steps `30` -> `1`", "train.precision `bf16` -> `fp32`",
        "train.compile kept: backend `inductor` -> `eager` (the same per-block fullgraph capture by dynamo; the "
        "captured graph runs as it is, no kernels generated)",
        "data.source `shards` -> `synthetic`", "cache.policy `require-seed` -> `cold`",
        "Volumes and bucket mounts dropped: they exist only on Modal",
        "checkpoint.every `100` -> `2`: saved at step(s) 2 to `checkpoints/` in the run dir; checkpoint.resume `auto` kept"]


def test_a_rehearsal_never_claims_a_checkpoint_that_does_not_fire():
    one_step = plan_of(target="local", resources={"gpu": "H100:2"}, train={"steps": 1}, checkpoint={"every": 100})
    assert one_step.run.substitutions[-1] == ("checkpoint.every `100` -> `1`: none fires in 1 step(s); "
                                              "checkpoint.resume `auto` kept")
    without = plan_of(target="local", resources={"gpu": "H100:2"})
    assert without.checkpoint.dir is None and not any("checkpoint" in s for s in without.run.substitutions)
    assert plan_of(target="local", resources={"gpu": "H100:2"}).train.compile_backend == "inductor"  # compile off


def test_lanes_and_helpers():
    b = plan_of(lane="bench", resources={"gpu": "H100:8"})
    assert b.bench.sizes_bytes == [1 << 20, 16 << 20, 128 << 20] and b.validate_ is None
    assert plan_of(lane="validate").validate_.finite_loss is True
    assert size_bytes("3KiB") == 3072 and torch_version(["numpy==1", "Torch == 2.1.0"]) == "2.1.0"


def test_tags_do_not_change_the_sha256():
    a = lower(make(), spec_path="a.yaml", spec_sha256="1" * 64, origins={}, run_id="r1")
    b = lower(make(), spec_path="b.yaml", spec_sha256="2" * 64, origins={}, run_id="r2")
    assert a.sha256() == b.sha256() and a.modal.tags != b.modal.tags


def test_plan_refuses_batch_geometry_that_does_not_add_up():
    from pydantic import ValidationError

    from megaspec.runtime.contract.plan import Plan

    body = plan_of(resources={"ranks": 2}, train={"global_batch": 8}).model_dump(by_alias=True)
    assert body["train"]["grad_accum"] == 4
    with pytest.raises(ValidationError, match="global_batch 8 != micro_batch 1 x grad_accum 3 x world_size 2"):
        Plan.model_validate({**body, "train": {**body["train"], "grad_accum": 3}})
    with pytest.raises(ValidationError, match="world_size 2 != nodes 1 x nproc_per_node 4"):
        Plan.model_validate({**body, "distributed": {**body["distributed"], "nproc_per_node": 4}})


def test_the_diagnostic_preset_takes_the_real_sequence_length():
    long = plan_of(preset="tiny", train={"seq_len": 4096, "global_batch": 8, "micro_batch": 4})
    assert (long.model.n_layers, long.model.d_model) == (2, 64) and long.model.max_seq_len == 4096
    short = plan_of(preset="tiny", train={"seq_len": 64, "global_batch": 8, "micro_batch": 4})
    assert short.model.max_seq_len == 128  # the preset's own length when the run is shorter
    other = plan_of(preset="dense-125m", train={"seq_len": 1024, "global_batch": 8, "micro_batch": 4})
    assert other.model.max_seq_len == 2048  # only the diagnostic preset stretches


def test_the_plans_model_is_the_preset_dimensions_plus_what_lower_derives():
    """`ModelPlan` repeats `ModelDims`' fields (the Plan is pydantic, the presets plain Python for lint's
    start-up); this holds them to one list, in one order, and lower fills every one from `model_dims`."""
    from dataclasses import asdict, fields

    from megaspec.compiler.spec.model_dims import model_dims
    from megaspec.runtime.contract.plan import ModelPlan
    from megaspec.runtime.contract.presets import ModelDims

    dims = [f.name for f in fields(ModelDims)]
    assert list(ModelPlan.model_fields) == ["preset", *dims, "num_params", "flops_per_token", "user"]
    spec = Spec.model_validate({"megaspec": 1, "name": "x", "preset": "dense-125m", "model": {"n_layers": 3}})
    plan = lower(spec, spec_path="x.yaml", spec_sha256="0" * 64, origins={})
    assert {k: getattr(plan.model, k) for k in dims} == asdict(model_dims(spec))
