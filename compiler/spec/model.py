"""Stage 2 of the compiler: the pydantic Spec, the only definition of the spec format (v1).

YAML keys are the field names (no aliases), so a pydantic error location is a YAML path.
Strict types, unknown keys forbidden, frozen. `schema.json` is generated from `Spec`.
Semantic checks that involve more than one field live in `rules/`, not here.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from megaspec.runtime.presets import DIAGNOSTIC_PRESET, PRESETS, ModelDims

from .gpu import GpuChoices, parse_gpus

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DURATION_PATTERN = r"^(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"


def parse_duration(value: int | str) -> int:
    """`2h`, `30m`, `1h30m`, `90s`, `1d` or an integer number of seconds -> seconds."""
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a duration must be at least 1 second")
        return value
    m = _DURATION.match(value.strip())
    if not m or not any(m.groups()):
        raise ValueError(f"`{value}` is not a duration; write it like `30m`, `2h`, `1h30m` or `90s`")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    seconds = ((d * 24 + h) * 60 + mi) * 60 + s
    if seconds < 1:
        raise ValueError("a duration must be at least 1 second")
    return seconds


Duration = Annotated[
    int | Annotated[str, Field(pattern=DURATION_PATTERN)],
    AfterValidator(parse_duration),
    Field(description="Seconds, or a duration like `30m`, `2h`, `1h30m`."),
]
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, description="Lowercase letters, digits, `.-_`")]
AbsPath = Annotated[str, Field(pattern=r"^/[^\s]*$", description="An absolute POSIX path")]
Scalar = str | int | float | bool

PresetName = Literal["tiny", "dense-125m", "dense-350m", "dense-1b", "dense-3b", "dense-8b"]
assert set(PresetName.__args__) == set(PRESETS)  # noqa: S101 (a programmer invariant, not user input)


def _gpu_choices(value: str | list[str]) -> GpuChoices:
    """The one parse of `resources.gpu`; each bad entry is an error at its own YAML path."""
    choices, errors = parse_gpus(value)
    if choices is None:
        raise ValidationError.from_exception_data("resources.gpu", [InitErrorDetails(
            type=PydanticCustomError("gpu_request", e.message, {"code": e.code, "rule": e.rule, "hint": e.hint}),
            loc=() if e.index is None else (e.index,), input=value if e.index is None else value[e.index],
        ) for e in errors])
    return choices


# YAML takes `TYPE[:COUNT]` or a list of fallbacks (that is the schema); the validated value is a
# `GpuChoices` (dumped back as written).
Gpu = Annotated[str | list[str], AfterValidator(_gpu_choices), PlainSerializer(GpuChoices.as_written)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(Section):
    """Where the run executes: GPU type and count, nodes, limits."""

    gpu: Gpu | None = Field(None, description="Modal GPU `TYPE[:COUNT]`; a list is ordered fallbacks")
    exact: bool = Field(False, description="Refuse automatic upgrades (`H100` -> `H100!`)")
    nodes: int = Field(1, ge=1, le=32, description="> 1: a `modal.clustered` multi-node run")
    ranks: int | None = Field(None, ge=1, le=64, description="CPU-only specs (no `gpu`): number of processes")
    timeout: Duration = Field("1h", validate_default=True, description="Per attempt, at most 24h")
    retries: int = Field(0, ge=0, le=10)
    cpu: float | None = Field(None, gt=0, le=256, description="Physical cores per container")
    memory_gib: int | None = Field(None, ge=1, le=2048, description="Memory per container in GiB")


class Image(Section):
    python: Annotated[str, Field(pattern=r"^3\.\d{1,2}$")] = "3.11"
    base: str | None = Field(None, description="Registry base image, pinned by tag or digest")
    packages: list[str] = Field(default_factory=list, description="pip requirements, each pinned with `==`")
    apt: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Plain settings only; credentials go in `secrets`")
    uv_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] | None = None


class Volume(Section):
    name: Name
    mount: AbsPath
    version: Literal[1, 2] | None = Field(None, description="Modal Volume version; fixed when it is created")


class Volumes(Section):
    """One Modal Volume per kind of state, never shared."""

    cache: Volume | None = None
    checkpoints: Volume | None = None
    data: Volume | None = None
    home: Volume | None = None


class Bucket(Section):
    bucket: str = Field(min_length=3)
    mount: AbsPath
    secret: Name | None = None
    prefix: str | None = Field(None, description="Key prefix; must end with `/`")
    read_only: bool = True
    endpoint_url: str | None = None


class Cache(Section):
    policy: Literal["cold", "warm", "require-seed"] = "warm"
    seed: AbsPath | None = Field(None, description="Where the warmed compile cache lives")


class ModelOverrides(Section):
    """Fields that override the preset's dimensions (or define the model when no preset is given)."""

    n_layers: int | None = Field(None, ge=1, le=256)
    d_model: int | None = Field(None, ge=8, le=65536)
    n_heads: int | None = Field(None, ge=1, le=512)
    n_kv_heads: int | None = Field(None, ge=1, le=512)
    d_ff: int | None = Field(None, ge=8, le=262144)
    vocab_size: int | None = Field(None, ge=2, le=1_048_576)
    max_seq_len: int | None = Field(None, ge=8, le=1_048_576)


class Train(Section):
    steps: int = Field(100, ge=1, le=10_000_000)
    warmup_steps: int = Field(3, ge=0, description="Excluded from the measured loop (step 0 always is)")
    global_batch: int | None = Field(None, ge=1, description="Sequences per optimizer step")
    micro_batch: int = Field(1, ge=1, description="Sequences per rank per forward")
    seq_len: int | None = Field(None, ge=8, description="Default: the model's `max_seq_len`")
    lr: float = Field(3.0e-4, gt=0, le=1.0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.1, ge=0, le=1)
    grad_clip: float = Field(1.0, ge=0)
    precision: Literal["bf16", "fp32"] | None = Field(None, description="Default: bf16 on GPUs, fp32 on CPUs")
    compile: bool = False
    activation_checkpointing: Literal["none", "selective", "full"] = "none"
    seed: int = Field(1234, ge=0, le=2**32 - 1)
    log_every: int = Field(1, ge=1)


class Data(Section):
    source: Literal["synthetic", "shards"] = "synthetic"
    path: AbsPath | None = Field(None, description="The hot path the loop reads: a Volume or local disk")
    stage_from: AbsPath | None = Field(None, description="Copied into `path` before the measured loop")
    dtype: Literal["uint16", "uint32"] = "uint16"


class Checkpoint(Section):
    every: int | None = Field(None, ge=1, description="Steps between checkpoints; unset disables them")
    resume: Literal["auto", "never"] = "auto"
    keep: int = Field(2, ge=1, le=100)


class Distributed(Section):
    timeout: Duration = Field("30m", validate_default=True, description="Collective timeout after the first step")
    init_timeout: Duration | None = Field(None, description="Init and first step (compile); default: larger")
    debug: Literal["OFF", "INFO", "DETAIL"] = "INFO"
    heartbeat: Literal["on", "off"] = "off"
    autotune: bool = Field(False, description="Inductor max-autotune (slow; competes for memory)")
    reshard_after_forward: Literal["default", "always", "never"] = "default"


# The receipt numbers `megaspec report` can rank runs by (compiler/runs/records.py computes them).
ObjectiveMetric = Literal["final_loss", "min_loss", "tokens_per_s", "mfu_pct", "step_time_p50_s", "step_time_p90_s",
                          "peak_mem_gib", "busbw_gbps", "cost_usd", "usd_per_mtok"]


class Objective(Section):
    """What makes a run of the sweep the best one."""

    metric: ObjectiveMetric
    goal: Literal["min", "max"]


class Sweep(Section):
    matrix: dict[str, Annotated[list[Scalar], Field(min_length=1)]] = Field(min_length=1)
    include: list[dict[str, Scalar]] = Field(default_factory=list)
    exclude: list[dict[str, Scalar]] = Field(default_factory=list)
    name: str | None = Field(None, description="Jinja2 template for each run's name")
    max_parallel: int | None = Field(None, ge=1, description="Modal runs in flight at once; the others wait "
                                     "`planned` until a `collect` or `status` sees a free slot")
    objective: Objective | None = Field(None, description="The best run in `megaspec report` (default: lowest "
                                        "final loss for train, highest bus bandwidth for bench)")


BenchOp = Literal["all_reduce", "all_gather", "gemm"]


class Bench(Section):
    ops: list[BenchOp] = Field(default_factory=lambda: ["all_reduce", "all_gather", "gemm"], min_length=1)
    sizes: list[Annotated[str, Field(pattern=r"^\d+(B|KiB|MiB|GiB)$")] | int] = Field(
        default_factory=lambda: ["1MiB", "16MiB", "128MiB"], min_length=1)
    iters: int = Field(20, ge=1, le=10_000)
    warmup_iters: int = Field(5, ge=0, le=1000)
    gemm_dims: list[int] = Field(default_factory=lambda: [4096, 8192], min_length=1)


class Validate(Section):
    finite_loss: bool = True
    max_final_loss: float | None = Field(None, gt=0)
    reference_receipt: str | None = Field(None, description="A receipt whose losses this run must reproduce")
    loss_rtol: float = Field(0.0, ge=0)


class Spec(Section):
    """A megaspec experiment spec, format version 1."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="megaspec spec v1")

    megaspec: Literal[1] = Field(description="Spec format version")
    name: Name
    lane: Literal["train", "bench", "validate"] = "train"
    extends: str | list[str] = Field(default_factory=list, description="Base spec files, relative to this file")
    target: Literal["modal", "local"] = "modal"
    resources: Resources = Field(default_factory=Resources)
    image: Image = Field(default_factory=Image)
    volumes: Volumes = Field(default_factory=Volumes)
    buckets: dict[str, Bucket] = Field(default_factory=dict)
    secrets: list[Name] = Field(default_factory=list, description="Names of Modal Secrets, never values")
    cache: Cache = Field(default_factory=Cache)
    preset: PresetName | None = None
    model: ModelOverrides = Field(default_factory=ModelOverrides)
    train: Train = Field(default_factory=Train)
    data: Data = Field(default_factory=Data)
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    distributed: Distributed = Field(default_factory=Distributed)
    sweep: Sweep | None = None
    bench: Bench | None = None
    validate_: Validate | None = Field(None, alias="validate")


def model_dims(spec: Spec) -> ModelDims:
    """The model a spec trains: its preset (the diagnostic one by default) with `model:` overrides."""
    base = PRESETS[spec.preset or DIAGNOSTIC_PRESET].as_dict()
    overrides = {k: v for k in base if (v := getattr(spec.model, k)) is not None}
    return ModelDims(**{**base, **overrides})
