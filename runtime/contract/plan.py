"""The runtime's input contract: a frozen, versioned, JSON Plan. Pure pydantic, no torch.

The compiler's `lower` stage decides every value here; the runtime only reads it. Its hash
(`Plan.sha256`, leaving out the run's identity and billing tags) names the experiment: a resume
refuses a run directory of another plan, a generated app refuses a plan it was not compiled for, and
a receipt is matched to its manifest by it. Which receipts may be compared side by side is a
different question, decided in `compiler/runs/comparison.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .artifact import Artifact
from .presets import ModelDims
from .vocabulary import (
    NAME_PATTERN,
    ActivationCheckpointing,
    BenchOp,
    CachePolicy,
    CollectiveBackend,
    CompileBackend,
    DataSource,
    Device,
    DivergenceAction,
    Lane,
    PathClass,
    Precision,
    ReshardAfterForward,
    ResumePolicy,
    Target,
    TokenDtype,
    VolumeKind,
    VolumeVersion,
    WandbMode,
)

PLAN_VERSION = 2  # v2: the version is `schema_version` alone (v1 also carried it as `plan_version`)
SCHEMA_VERSION = f"megaspec.plan.v{PLAN_VERSION}"


def _from_v1(data: dict) -> dict:
    data.pop("plan_version", None)
    return {**data, "schema_version": "megaspec.plan.v2"}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunIdentity(_Frozen):
    """Run-unique and placement fields: excluded from the comparison hash."""

    run_id: str | None = None
    spec_path: str  # as given on the command line, POSIX
    spec_sha256: str  # `codegen/build.spec_sha256`: the spec file's bytes, or with bases the `sha256sum` manifest of all
    origins: dict[str, str] = Field(default_factory=dict)  # "train.steps" -> "specs/x.yaml:14" | "default" | ...
    rehearsal: bool = False  # a GPU spec run locally on CPU to check geometry; never a GPU result
    substitutions: list[str] = Field(default_factory=list)  # what a rehearsal replaced, in words
    sweep_id: str | None = Field(default=None, exclude_if=lambda v: v is None)  # the sweep this run is one of
    # The command line's overrides (`steps`, `target`), so `megaspec rerun` repeats them; and the run a
    # rerun repeats. Left out of the JSON when unset, so plans without them keep their bytes.
    flags: dict[str, str | int] = Field(default_factory=dict, exclude_if=lambda v: not v)
    rerun_of: str | None = Field(default=None, exclude_if=lambda v: v is None)
    # The spec's (a sweep's: its template's) git revision and dirty flag when applied, for the receipt.
    git_sha: str | None = Field(default=None, exclude_if=lambda v: v is None)
    git_dirty: bool | None = Field(default=None, exclude_if=lambda v: v is None)


class UserModelPlan(_Frozen):
    """The user's own model (`model.entry`): what the rank imports and calls, and the hash of that code."""

    entry: str  # `package.module:callable`
    code: list[str]  # absolute folders the rank puts at the front of sys.path, in order
    args: dict[str, Any]  # keyword arguments of the callable
    code_sha256: str  # runtime/contract/user_code.code_sha256 of the folders as compiled


class ModelPlan(_Frozen):
    """A preset's dimensions, or (`user` set) the user's own model, whose dimensions only its code knows:
    then every dimension but `vocab_size` is None and the runtime counts parameters and FLOPs."""

    preset: str | None
    n_layers: int | None
    d_model: int | None
    n_heads: int | None
    n_kv_heads: int | None
    d_ff: int | None
    vocab_size: int
    max_seq_len: int | None
    num_params: int | None
    flops_per_token: int | None  # at train.seq_len, torchtitan's formula
    user: UserModelPlan | None = Field(default=None, exclude_if=lambda v: v is None)

    def dims(self) -> ModelDims:
        """The preset decoder's dimensions (a programmer error for the user's own model: check `user` first)."""
        if self.user is not None:
            raise ValueError(f"the model `{self.user.entry}` is the user's own: it has no preset dimensions")
        return ModelDims(n_layers=self.n_layers, d_model=self.d_model, n_heads=self.n_heads,
                         n_kv_heads=self.n_kv_heads, d_ff=self.d_ff, vocab_size=self.vocab_size,
                         max_seq_len=self.max_seq_len)


class EvalPlan(_Frozen):
    every: int  # steps between evaluations; the last step is always evaluated
    batches: int  # micro-batches per rank per evaluation, the same ones every time


class DivergencePlan(_Frozen):
    """A loss above `factor` x the first logged loss for `patience` logged steps in a row: `diverged`."""

    factor: float
    patience: int
    action: DivergenceAction


class TrainPlan(_Frozen):
    steps: int
    warmup_steps: int  # excluded from the measured loop (step 0 always is)
    global_batch: int  # sequences per optimizer step
    micro_batch: int  # sequences per rank per forward
    grad_accum: int  # global_batch / (micro_batch * world_size), exact: the Plan checks it
    seq_len: int
    lr: float
    min_lr_ratio: float
    lr_warmup_steps: int
    weight_decay: float
    grad_clip: float
    precision: Precision
    compile: bool
    # `eager` only in a CPU rehearsal (dynamo's graph capture, no Inductor kernels); left out of the JSON
    # when `inductor`, so plans without it keep their bytes and hash.
    compile_backend: CompileBackend = Field(default="inductor", exclude_if=lambda v: v == "inductor")
    activation_checkpointing: ActivationCheckpointing
    reshard_after_forward: ReshardAfterForward
    seed: int
    log_every: int
    # Left out of the JSON when off, so plans without it keep their bytes and hash.
    eval: EvalPlan | None = Field(default=None, exclude_if=lambda v: v is None)
    divergence: DivergencePlan | None = None  # None (a plan written before it existed): never checked

    @property
    def tokens_per_step(self) -> int:
        """Tokens one optimizer step trains on, over all ranks."""
        return self.global_batch * self.seq_len


class DataPlan(_Frozen):
    source: DataSource
    path: str | None  # hot path the loop reads
    stage_from: str | None  # copied into `path` before the measured loop
    dtype: TokenDtype
    path_class: PathClass


class CheckpointPlan(_Frozen):
    dir: str | None  # DCP root; None disables checkpoints
    every: int | None
    resume: ResumePolicy
    keep: int


class CachePlan(_Frozen):
    policy: CachePolicy
    dir: str | None  # TORCHINDUCTOR_CACHE_DIR; None: torch's default (a fresh temp dir)
    seed: str | None  # where a warmed cache (directory or mega-cache file) is restored from


class DistributedPlan(_Frozen):
    backend: CollectiveBackend
    device: Device
    nodes: int
    nproc_per_node: int
    world_size: int
    timeout_s: int  # collective timeout after the first step
    init_timeout_s: int  # init + first step (compile happens here)
    max_restarts: int  # always 0: a benchmark never silently restarts
    env: dict[str, str]  # hardening applied before the process group starts
    run_dir_env: dict[str, str] = Field(default_factory=dict)  # values are paths relative to the run dir


class ResourcesPlan(_Frozen):
    gpu_type: str | None  # canonical Modal type, "H100" ("H100!" is gpu_type H100 + exact)
    gpu_count: int  # per node; 0 for CPU-only
    modal_gpu: list[str]  # ordered Modal gpu strings: ["H100!:8"], fallbacks after the first
    exact: bool
    cpu: float | None
    memory_mib: int | None
    timeout_s: int  # per attempt
    retries: int
    price_usd_per_hour: float | None  # list price of one attempt's containers (dated table)


class VolumeMount(_Frozen):
    kind: VolumeKind
    name: str
    mount: str
    version: VolumeVersion | None


class BucketMount(_Frozen):
    key: str
    bucket: str
    mount: str
    secret: str | None
    prefix: str | None
    read_only: bool
    endpoint_url: str | None


class ImagePlan(_Frozen):
    python: str
    base: str | None
    packages: list[str]
    apt: list[str]
    uv_version: str
    env: dict[str, str]
    builder_version: str


class CodeDir(_Frozen):
    local: str  # absolute, on the machine that compiled the plan
    remote: str  # absolute, in the container: what `model.user.code` names


class ModalPlan(_Frozen):
    app_name: str
    client_version: str  # the `modal` client minor version the generated code targets: apply refuses another
    image: ImagePlan
    volumes: list[VolumeMount]
    buckets: list[BucketMount]
    secrets: list[str]  # names of Modal Secrets only, never values
    tags: dict[str, str]
    single_use_containers: bool
    runs_dir: str  # where the function writes receipts (on a Volume when one exists)
    # The user's model code shipped into the image: (folder on this machine, folder in the image), in order.
    code_dirs: list[CodeDir] = Field(default_factory=list, exclude_if=lambda v: not v)


class BenchPlan(_Frozen):
    ops: list[BenchOp]
    sizes_bytes: list[int]
    iters: int
    warmup_iters: int
    gemm_dims: list[int]


class ValidatePlan(_Frozen):
    finite_loss: bool
    max_final_loss: float | None
    reference_receipt: str | None
    loss_rtol: float


class TensorBoardPlan(_Frozen):
    dir: str | None  # absolute, one subfolder per run; None: `<run dir>/tensorboard`


class WandbPlan(_Frozen):
    project: str
    entity: str | None
    group: str | None  # None: the sweep id of a sweep's run (`wandb_group`)
    mode: WandbMode  # online on Modal (the key from `secret`), offline on this machine
    secret: str  # the Modal Secret that holds WANDB_API_KEY (named in the error when the key is missing)


class TrackingPlan(_Frozen):
    tensorboard: TensorBoardPlan | None = None
    wandb: WandbPlan | None = None


class Plan(Artifact):
    KIND = "plan"
    UPGRADES = {"megaspec.plan.v1": _from_v1}

    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION
    megaspec_version: str
    name: str = Field(pattern=NAME_PATTERN)  # a plan.json naming `../../x` must not name a folder outside build/
    lane: Lane
    target: Target
    run: RunIdentity
    model: ModelPlan
    train: TrainPlan
    data: DataPlan
    checkpoint: CheckpointPlan
    cache: CachePlan
    distributed: DistributedPlan
    resources: ResourcesPlan
    modal: ModalPlan
    bench: BenchPlan | None = None
    validate_: ValidatePlan | None = Field(default=None, alias="validate")
    # Left out of the JSON (and so of the comparison hash) when off: a tracker does not change a run.
    tracking: TrackingPlan | None = Field(default=None, exclude_if=lambda v: v is None)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _geometry_adds_up(self) -> Plan:
        """The batch geometry `lower` derived must hold: every rank runs the same whole micro-batches."""
        t, d = self.train, self.distributed
        if d.world_size != d.nodes * d.nproc_per_node:
            raise ValueError(f"world_size {d.world_size} != nodes {d.nodes} x nproc_per_node {d.nproc_per_node}")
        if t.grad_accum < 1 or t.global_batch != t.micro_batch * t.grad_accum * d.world_size:
            raise ValueError(f"global_batch {t.global_batch} != micro_batch {t.micro_batch} x grad_accum "
                             f"{t.grad_accum} x world_size {d.world_size}")
        return self

    def to_json(self) -> str:
        """Byte-stable JSON: fields in contract order, dicts in the order `lower` built them, 2-space indent."""
        return self.model_dump_json(indent=2, by_alias=True) + "\n"

    def experiment(self) -> dict[str, Any]:
        """The plan as JSON data less the run's identity, billing tags and where the model code lies on the
        compiling machine (`model.user.code` is that place for a local plan, and the image's folders are
        `modal.code_dirs.remote`; the content is `model.user.code_sha256`): what `sha256` hashes and
        `receipts compare` shows as settings."""
        return self.model_dump(mode="json", by_alias=True, exclude={
            "run": True, "modal": {"tags": True, "code_dirs": {"__all__": {"local"}}}, "model": {"user": {"code"}}})

    def sha256(self) -> str:
        """sha256 of `experiment()`: equal hashes mean the same experiment, whichever checkout (or a run
        folder's copy of the code, `megaspec rerun`) compiled it."""
        return hashlib.sha256(json.dumps(self.experiment(), sort_keys=True).encode()).hexdigest()

    def code_here(self) -> list[Path]:
        """The user's model code folders on the machine that compiled the plan (none for a preset model)."""
        user = self.model.user
        return [Path(d.local) for d in self.modal.code_dirs] or [Path(c) for c in user.code] if user else []


def read_plan(path: str | Path) -> Plan:
    """Read a plan file: its version checked first, a previous version's upgraded (`artifact.py`)."""
    return Plan.read(path)


def wandb_group(plan: Plan) -> str | None:
    """The W&B group of a run: the spec's `tracking.wandb.group`, else the sweep it is one of."""
    w = plan.tracking and plan.tracking.wandb
    return (w.group or plan.run.sweep_id) if w else None
