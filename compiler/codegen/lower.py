"""Stage 4 of the compiler: lower a checked Spec into the runtime's frozen Plan.

lower assembles the Plan from decisions each made in one place: the topology and batch geometry
(`spec/topology.geometry`), the GPU request and its Modal spelling (`spec/gpu.py`), where a path
lives (`spec/mounts.py`), the model a preset gives (`spec/model_dims.py`). The rest is decided
here: timeouts, the NCCL/Inductor environment hardening that the seeds' hangs taught, pinned image
packages, volume paths, the containers' price per hour (at the list prices of `runtime/contract/gpus.py` and
`runtime/contract/cost.py`). Templates only interpolate what the Plan holds. A GPU spec lowered for
`--target local` is first rewritten by `rehearsal.py` (same geometry, CPU ranks).
"""

from __future__ import annotations

import re
from pathlib import Path

from megaspec.runtime.contract.cost import usd_per_hour
from megaspec.runtime.contract.plan import (
    BenchPlan,
    BucketMount,
    CachePlan,
    CheckpointPlan,
    CodeDir,
    DataPlan,
    DistributedPlan,
    DivergencePlan,
    EvalPlan,
    ImagePlan,
    ModalPlan,
    ModelPlan,
    Plan,
    ResourcesPlan,
    RunIdentity,
    TensorBoardPlan,
    TrackingPlan,
    TrainPlan,
    UserModelPlan,
    ValidatePlan,
    VolumeMount,
    WandbPlan,
)
from megaspec.runtime.contract.presets import flops_per_token, num_params
from megaspec.runtime.contract.rundir import CHECKPOINTS_DIR, COMM_TRACES_PREFIX
from megaspec.runtime.contract.user_code import code_folders, code_sha256

from .. import __version__
from ..diagnostics import InternalError
from ..spec.field_types import package_name
from ..spec.model import Bench, Spec, Validate
from ..spec.model_dims import model_dims, seq_len
from ..spec.mounts import VOLUME_KINDS, path_class
from ..spec.topology import Geometry, geometry, precision
from .rehearsal import rehearsal_train, rehearse

# Pinned image defaults (the runtime imports torch, numpy and pydantic). torch 2.8.0's PyPI Linux
# wheel is built against CUDA 12.8: Hopper (sm_90) and Blackwell (sm_100) both run it.
DEFAULT_PACKAGES = ("torch==2.8.0", "numpy==2.2.6", "pydantic==2.11.9")
DEFAULT_UV_VERSION = "0.8.0"
MODAL_CLIENT_VERSION = "1.6"  # the modal minor version whose public API templates/modal_app.py.j2 uses
RDMA_APT = ("libibverbs1",)  # modal.clustered(rdma=True) needs the verbs userspace library
RUNS_SUBDIR = "megaspec-runs"
LOCAL_RUNS_DIR = "/tmp/megaspec-runs"
CODE_ROOT = "/opt/megaspec/code"  # the user's model code in the Modal image
FR_BUFFER_EVENTS = 20000  # flight-recorder ring size, torchtitan's default
NCCL_HEARTBEAT_S = 480  # torch's default monitor heartbeat
MIN_INIT_TIMEOUT_S = 600
CPU_CORES_PER_GPU, MEM_GIB_PER_GPU = 4.0, 32  # 8 GPUs: 32 cores, 256 GiB (Modal's 8-GPU example)
CPU_CORES_PER_RANK, MEM_GIB_PER_RANK = 1.0, 4
_SIZE = re.compile(r"^(\d+)(B|KiB|MiB|GiB)$")
_SIZE_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


def lower(checked_spec: Spec, *, spec_path: str, spec_sha256: str, origins: dict[str, str],
          target: str | None = None, run_id: str | None = None, sweep_id: str | None = None,
          spec_dir: Path | None = None) -> Plan:
    """Spec (already free of lint errors) -> Plan. `target` is the CLI override of `target:`; `sweep_id`:
    the sweep the run is one of; `spec_dir`: the folder `model.code` is relative to (compose's `code_dir`;
    default: `spec_path`'s)."""
    spec, substitutions = checked_spec, []
    resolved = target or spec.target
    rehearsal = resolved == "local" and spec.target == "modal" and spec.resources.gpu is not None
    if rehearsal:
        spec, substitutions = rehearse(spec)
    run = RunIdentity(run_id=run_id, spec_path=spec_path, spec_sha256=spec_sha256, origins=dict(origins),
                      rehearsal=rehearsal, substitutions=substitutions, sweep_id=sweep_id)
    plan = _assemble(spec, resolved, run, spec_dir or Path(spec_path).parent)
    if rehearsal:
        plan = plan.model_copy(update={"train": rehearsal_train(plan.train)})
    return plan.model_copy(update={"modal": _with_tags(plan, spec_sha256, run_id)})


def _assemble(spec: Spec, target: str, run: RunIdentity, spec_dir: Path) -> Plan:
    geo = geometry(spec)
    dist = _distributed(spec, geo)
    folders = code_folders(spec_dir, spec.model.code)
    model = _model(spec, folders, target)
    train = _train(spec, model, geo)
    cache = _cache(spec, dist)
    return Plan(
        megaspec_version=__version__, name=spec.name, lane=spec.lane, target=target, run=run,
        model=model, train=train, data=_data(spec), checkpoint=_checkpoint(spec), cache=cache,
        distributed=dist.model_copy(update={"env": _hardening_env(spec, dist, cache),
                                            "run_dir_env": _dump_env(dist)}),
        resources=_resources(spec, dist, target), modal=_modal(spec, cache, folders, target),
        bench=_bench(spec), validate=_validate(spec), tracking=_tracking(spec, target),
    )


# --- topology and geometry -------------------------------------------------------------------


def _distributed(spec: Spec, geo: Geometry) -> DistributedPlan:
    return DistributedPlan(
        backend=geo.backend, device=geo.device, nodes=geo.nodes, nproc_per_node=geo.nproc_per_node,
        world_size=geo.world_size, timeout_s=spec.distributed.timeout, init_timeout_s=_init_timeout_s(spec),
        max_restarts=0, env={},
    )


def _init_timeout_s(spec: Spec) -> int:
    """Init + first step: compile happens there and ranks compile at different speeds."""
    if spec.distributed.init_timeout is not None:
        return spec.distributed.init_timeout
    timeout_s = spec.distributed.timeout
    return max(2 * timeout_s, MIN_INIT_TIMEOUT_S) if spec.train.compile else timeout_s


def _model(spec: Spec, folders: list[Path], target: str) -> ModelPlan:
    dims = model_dims(spec)
    if dims is None:
        return _user_model(spec, folders, target)
    return ModelPlan(preset=spec.preset, **dims.as_dict(), num_params=num_params(dims),
                     flops_per_token=flops_per_token(dims, seq_len(spec)))


def code_dirs(folders: list[Path], target: str) -> list[CodeDir]:
    """Where each `model.code` folder is for the rank: itself here; in the Modal image, one folder each
    under CODE_ROOT (numbered, so two folders of one name never collide)."""
    if target == "local":
        return [CodeDir(local=str(f), remote=str(f)) for f in folders]
    return [CodeDir(local=str(f), remote=f"{CODE_ROOT}/{i}-{f.name}") for i, f in enumerate(folders)]


def _user_model(spec: Spec, folders: list[Path], target: str) -> ModelPlan:
    """The user's own model: its entry, args and code hash; parameters and FLOPs are the runtime's to count."""
    m = spec.model
    assert m.entry is not None and m.vocab_size is not None, "MS219 checked"  # noqa: S101
    user = UserModelPlan(entry=m.entry, code=[d.remote for d in code_dirs(folders, target)], args=dict(m.args),
                         code_sha256=code_sha256(folders))
    return ModelPlan(preset=None, n_layers=None, d_model=None, n_heads=None, n_kv_heads=None, d_ff=None,
                     vocab_size=m.vocab_size, max_seq_len=None, num_params=None, flops_per_token=None, user=user)


def _train(spec: Spec, model: ModelPlan, geo: Geometry) -> TrainPlan:
    t = spec.train
    if not geo.divisible:
        raise InternalError(f"lower() got an unchecked spec: global_batch {geo.global_batch} is not a multiple "
                            f"of micro_batch x world size ({geo.sequences_per_micro_step})")
    return TrainPlan(
        steps=t.steps, warmup_steps=t.warmup_steps, global_batch=geo.global_batch, micro_batch=geo.micro_batch,
        grad_accum=geo.grad_accum, seq_len=seq_len(spec), lr=t.lr,
        min_lr_ratio=t.min_lr_ratio, lr_warmup_steps=lr_warmup_steps(t.steps, t.lr_warmup_steps),
        weight_decay=t.weight_decay,
        grad_clip=t.grad_clip, precision=precision(spec, geo), compile=t.compile,
        activation_checkpointing=t.activation_checkpointing,
        reshard_after_forward=spec.distributed.reshard_after_forward, seed=t.seed, log_every=t.log_every,
        eval=EvalPlan(every=t.eval.every, batches=t.eval.batches) if t.eval else None,
        divergence=DivergencePlan(**t.divergence.model_dump()),
    )


def lr_warmup_steps(steps: int, written: int | None) -> int:
    """The learning-rate warmup: as written, else `min(100, steps // 10)` (what `train.lr_warmup_steps` says)."""
    return written if written is not None else min(100, steps // 10)


# --- state: data, checkpoints, compile cache ---------------------------------------------------


def _data(spec: Spec) -> DataPlan:
    d = spec.data
    if d.source == "synthetic" or d.path is None:
        return DataPlan(source=d.source, path=d.path, stage_from=d.stage_from, dtype=d.dtype,
                        path_class="synthetic")
    return DataPlan(source=d.source, path=d.path, stage_from=d.stage_from, dtype=d.dtype,
                    path_class=path_class(spec, d.path))


def _checkpoint(spec: Spec) -> CheckpointPlan:
    """On the checkpoints Volume when there is one; else `checkpoints` relative to the run dir."""
    c, vol = spec.checkpoint, spec.volumes.checkpoints
    if vol is not None:
        where = f"{vol.mount.rstrip('/')}/{spec.name}"
    else:
        where = CHECKPOINTS_DIR if c.every is not None else None
    return CheckpointPlan(dir=where, every=c.every, resume=c.resume, keep=c.keep)


def torch_version(packages: list[str]) -> str:
    """The pinned torch version (`2.8.0`), or `unpinned`: part of the compile-cache key."""
    for pkg in packages:
        name, _, version = pkg.partition("==")
        if package_name(name) == "torch":
            return version.strip() or "unpinned"
    return "unpinned"


def _cache(spec: Spec, dist: DistributedPlan) -> CachePlan:
    """Inductor caches are only valid for one torch version and one GPU type: key the dir by both."""
    vol = spec.volumes.cache
    where = None
    if vol is not None:
        gpu = spec.resources.gpu
        device = gpu.primary.type if gpu is not None else "cpu"
        where = f"{vol.mount.rstrip('/')}/inductor/{device}-torch{torch_version(_packages(spec))}"
    return CachePlan(policy=spec.cache.policy, dir=where, seed=spec.cache.seed)


def _hardening_env(spec: Spec, dist: DistributedPlan, cache: CachePlan) -> dict[str, str]:
    """The environment every rank starts with: each entry is a lesson from a hung or silent run."""
    d, t = spec.distributed, spec.train
    env = {"TORCH_DISTRIBUTED_DEBUG": d.debug, "TORCHINDUCTOR_FX_GRAPH_CACHE": "1",
           "TORCHINDUCTOR_MAX_AUTOTUNE": "1" if d.autotune else "0"}
    if cache.dir is not None:  # one shared dir: every rank sees the same cache state
        env |= {"TORCHINDUCTOR_CACHE_DIR": cache.dir, "TRITON_CACHE_DIR": f"{cache.dir}/triton"}
    if dist.backend == "nccl":
        env |= _nccl_env(d.heartbeat, t.compile, dist.init_timeout_s)
        if t.compile and dist.world_size > 1:  # autotune must not ask for more shared memory than exists
            env["TORCHINDUCTOR_MAX_AUTOTUNE_PRUNE_CHOICES_BASED_ON_SHARED_MEM"] = "1"
    return env


def _dump_env(dist: DistributedPlan) -> dict[str, str]:
    """Flight-recorder dumps, one file per rank, inside the run dir (joined at launch: it holds the run id)."""
    if dist.backend != "nccl":
        return {}
    return {"TORCH_FR_DUMP_TEMP_FILE": COMM_TRACES_PREFIX, "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": COMM_TRACES_PREFIX}


def _nccl_env(heartbeat: str, compile_: bool, init_timeout_s: int) -> dict[str, str]:
    env = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "3", "TORCH_NCCL_DUMP_ON_TIMEOUT": "1",
           "TORCH_FR_BUFFER_SIZE": str(FR_BUFFER_EVENTS), "TORCH_NCCL_TRACE_BUFFER_SIZE": str(FR_BUFFER_EVENTS)}
    if heartbeat == "off":  # a long compile must not look like a dead watchdog
        return env | {"TORCH_NCCL_ENABLE_MONITORING": "0"}
    beat_s = max(NCCL_HEARTBEAT_S, init_timeout_s) if compile_ else NCCL_HEARTBEAT_S
    return env | {"TORCH_NCCL_ENABLE_MONITORING": "1", "TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC": str(beat_s)}


# --- resources and the Modal app ---------------------------------------------------------------


def _resources(spec: Spec, dist: DistributedPlan, target: str) -> ResourcesPlan:
    r = spec.resources
    reqs = r.gpu.requests if r.gpu is not None else ()
    primary = reqs[0] if reqs else None
    per_unit = (CPU_CORES_PER_GPU, MEM_GIB_PER_GPU) if primary else (CPU_CORES_PER_RANK, MEM_GIB_PER_RANK)
    cpu = r.cpu if r.cpu is not None else per_unit[0] * dist.nproc_per_node
    mem_gib = r.memory_gib if r.memory_gib is not None else per_unit[1] * dist.nproc_per_node
    return ResourcesPlan(
        gpu_type=primary.type if primary else None, gpu_count=primary.count if primary else 0,
        modal_gpu=[q.modal_string(exact=r.exact) for q in reqs], exact=r.exact or bool(primary and primary.exact),
        cpu=cpu, memory_mib=mem_gib * 1024, timeout_s=r.timeout, retries=r.retries,
        price_usd_per_hour=None if target == "local" else usd_per_hour(
            primary.type if primary else None, primary.count if primary else 0, cpu, mem_gib, dist.nodes),
    )


def _packages(spec: Spec) -> list[str]:
    """The user's pins, plus pinned defaults for what the runtime imports and the user left out."""
    listed = {package_name(p) for p in spec.image.packages}
    extra = [p for p in DEFAULT_PACKAGES if package_name(p) not in listed]
    return [*spec.image.packages, *extra]


def _image(spec: Spec) -> ImagePlan:
    i = spec.image
    apt = list(i.apt) + [a for a in RDMA_APT if spec.resources.nodes > 1 and a not in i.apt]
    minor = int(i.python.split(".")[1])
    return ImagePlan(python=i.python, base=i.base, packages=_packages(spec), apt=apt,
                     uv_version=i.uv_version or DEFAULT_UV_VERSION, env=dict(i.env),
                     builder_version="2026.10" if minor >= 11 else "2025.06")


def _runs_dir(spec: Spec) -> str:
    """Receipts land on a Volume (checkpoints first, then cache) so they outlive the container."""
    vol = spec.volumes.checkpoints or spec.volumes.cache
    return f"{vol.mount.rstrip('/')}/{RUNS_SUBDIR}" if vol else LOCAL_RUNS_DIR


def _modal(spec: Spec, cache: CachePlan, folders: list[Path], target: str) -> ModalPlan:
    volumes = [VolumeMount(kind=kind, name=v.name, mount=v.mount, version=v.version)
               for kind in VOLUME_KINDS
               if (v := getattr(spec.volumes, kind)) is not None]
    buckets = [BucketMount(key=key, bucket=b.bucket, mount=b.mount, secret=b.secret, prefix=b.prefix,
                           read_only=b.read_only, endpoint_url=b.endpoint_url)
               for key, b in sorted(spec.buckets.items())]
    return ModalPlan(app_name=spec.name, client_version=MODAL_CLIENT_VERSION, image=_image(spec), volumes=volumes, buckets=buckets,
                     secrets=list(spec.secrets), tags={}, single_use_containers=True, runs_dir=_runs_dir(spec),
                     code_dirs=code_dirs(folders, "modal") if spec.model.entry is not None else [])


def _with_tags(plan: Plan, spec_sha256: str, run_id: str | None) -> ModalPlan:
    """Billing tags; the plan hash excludes the tags themselves, so it can name itself."""
    tags = {"megaspec": plan.name, "megaspec_lane": plan.lane, "megaspec_plan": plan.sha256()[:12],
            "megaspec_spec": spec_sha256[:12]}
    if run_id:
        tags["megaspec_run"] = run_id
    return plan.modal.model_copy(update={"tags": tags})


# --- lanes -------------------------------------------------------------------------------------


def size_bytes(size: str | int) -> int:
    if isinstance(size, int):
        return size
    m = _SIZE.match(size)
    if m is None:
        raise InternalError(f"lower() got an unchecked bench size `{size}`")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def _bench(spec: Spec) -> BenchPlan | None:
    b = spec.bench
    if b is None and spec.lane != "bench":
        return None
    b = b or Bench()
    return BenchPlan(ops=list(b.ops), sizes_bytes=[size_bytes(s) for s in b.sizes], iters=b.iters,
                     warmup_iters=b.warmup_iters, gemm_dims=list(b.gemm_dims))


def _tracking(spec: Spec, target: str) -> TrackingPlan | None:
    """The trackers asked for; W&B logs online on Modal and offline on this machine (no key, no network)."""
    t = spec.tracking
    if t is None or not (t.tensorboard or t.wandb):
        return None
    w = t.wandb
    return TrackingPlan(
        tensorboard=TensorBoardPlan(dir=t.tensorboard_dir) if t.tensorboard else None,
        wandb=w and WandbPlan(project=w.project, entity=w.entity, group=w.group, secret=w.secret,
                              mode="online" if target == "modal" else "offline"))


def _validate(spec: Spec) -> ValidatePlan | None:
    v = spec.validate_
    if v is None and spec.lane != "validate":
        return None
    v = v or Validate()
    return ValidatePlan(finite_loss=v.finite_loss, max_final_loss=v.max_final_loss,
                        reference_receipt=v.reference_receipt, loss_rtol=v.loss_rtol)
