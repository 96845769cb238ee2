"""Stage 2 of the compiler: the pydantic Spec, the only definition of the spec format (v1).

YAML keys are the field names (the one alias, `validate`, only avoids pydantic's `validate` method),
so a pydantic error location is a YAML path.
Strict types, unknown keys forbidden, frozen. `schema.json` is generated from `Spec`; the value
types its fields use (durations, names, the GPU request, bounds) are in `field_types.py`.
Semantic checks that involve more than one field live in `lint/rules/`, not here.
"""

from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, JsonValue, model_validator

from megaspec.runtime.contract.presets import PRESETS
from megaspec.runtime.contract.vocabulary import (
    ActivationCheckpointing,
    BenchOp,
    CachePolicy,
    DataSource,
    DivergenceAction,
    Lane,
    Precision,
    ReshardAfterForward,
    ResumePolicy,
    Target,
    TokenDtype,
    VolumeVersion,
)

from .document_checks import integral_floats, nul_errors
from .field_types import (
    MAX_SEQUENCES,
    MAX_STEPS,
    MAX_SWEEP_RUNS,
    AbsPath,
    Duration,
    EnvName,
    Gpu,
    Int,
    Name,
    Scalar,
    Section,
    bounded_matrix,
    not_bool,
)

PresetName = Literal["tiny", "dense-125m", "dense-350m", "dense-1b", "dense-3b", "dense-8b"]
assert set(PresetName.__args__) == set(PRESETS)  # noqa: S101 (a programmer invariant, not user input)


class Resources(Section):
    """Where the run executes: GPU type and count, nodes, limits."""

    gpu: Gpu | None = Field(
        None, description="Modal GPU `TYPE[:COUNT]`, e.g. `H100:8`; a list is ordered fallbacks. "
                          "Unset: a CPU-only spec (`target: local`).")
    exact: bool = Field(False, description="Refuse Modal's automatic upgrades (`H100` -> `H100!`): the receipt "
                                           "then names the GPU that was asked for.")
    nodes: Int = Field(1, ge=1, le=32, description="Containers in the run; more than 1 is a `modal.clustered` "
                                                   "multi-node run.")
    ranks: Int | None = Field(None, ge=1, le=64, description="Processes of a CPU-only spec (no `gpu`); a GPU "
                                                             "spec has one rank per GPU.")
    timeout: Duration = Field("1h", validate_default=True,
                              description="Wall-clock limit per attempt: seconds, or `30m`, `2h`, `1h30m`; at "
                                          "most 24h.")
    retries: Int = Field(0, ge=0, le=10, description="Attempts after a failed one; each resumes from the latest "
                                                     "complete checkpoint.")
    cpu: float | None = Field(None, gt=0, le=256, description="Physical CPU cores per container.")
    memory_gib: Int | None = Field(None, ge=1, le=2048, description="Memory per container in GiB.")


class Image(Section):
    """The container image: Python, pinned packages, plain environment."""

    python: Annotated[str, Field(pattern=r"^3\.\d{1,2}$")] = Field(
        "3.11", description="Python version of the image, quoted: `\"3.11\"`.")
    base: str | None = Field(None, description="Registry base image, pinned by tag or digest; unset: Modal's "
                                               "Debian slim.")
    packages: list[str] = Field(default_factory=list, description="pip requirements, each pinned with `==`.")
    apt: list[str] = Field(default_factory=list, description="Debian packages installed with apt.")
    env: dict[EnvName, str] = Field(default_factory=dict, description="Plain environment settings; credentials go in "
                                                                  "`secrets`.")
    uv_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")] | None = Field(
        None, description="Pin the uv that installs `packages`, e.g. `0.8.4`.")


class Volume(Section):
    """A Modal Volume: its name and where it is mounted."""

    name: Name = Field(description="Modal Volume name: lowercase letters, digits, `.-_`.")
    mount: AbsPath = Field(description="Absolute mount path in the container, e.g. `/vol/cache`.")
    version: Annotated[VolumeVersion, BeforeValidator(not_bool)] | None = Field(None, description="Modal Volume version; fixed when it is created.")


class Volumes(Section):
    """One Modal Volume per kind of state, never shared."""

    cache: Volume | None = Field(None, description="Compile cache (Inductor, Triton) and its seed.")
    checkpoints: Volume | None = Field(None, description="Checkpoints and receipts: what outlives the container.")
    data: Volume | None = Field(None, description="Token shards the training loop reads (the hot path).")
    home: Volume | None = Field(None, description="Everything else a run keeps (model downloads, HF home).")


class Bucket(Section):
    """An object-storage bucket mounted read-mostly: cold storage, never the hot path."""

    bucket: str = Field(min_length=3, description="Bucket name.")
    mount: AbsPath = Field(description="Absolute mount path in the container, e.g. `/mnt/corpus`.")
    secret: Name | None = Field(None, description="The Modal Secret holding the bucket's credentials.")
    prefix: str | None = Field(None, description="Key prefix to mount; must end with `/`.")
    read_only: bool = Field(True, description="Mount read-only (the default).")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (R2, GCS, MinIO); unset: AWS S3.")


class Cache(Section):
    """The compile cache: how each rank's Inductor cache starts."""

    policy: CachePolicy = Field(
        "warm", description="`warm`: reuse the cache Volume; `cold`: compile from scratch; `require-seed`: restore "
                            "the seed at `cache.seed` (made by `megaspec cache seed`) and refuse to start without it.")
    seed: AbsPath | None = Field(None, description="Where the compile-cache seed lives, on the cache Volume; "
                                                   "`megaspec cache seed SPEC` makes it.")


# `package.module:callable`, the form `model.entry` takes (Python identifiers, dotted module).
ENTRY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class ModelOverrides(Section):
    """The model: a preset's dimensions overridden field by field, every dimension without a preset, or your
    own code (`entry`, `code`, `args`, `vocab_size`)."""

    entry: Annotated[str, Field(pattern=ENTRY_PATTERN, max_length=512)] | None = Field(
        None, description="Your model: `package.module:callable` in the `code` folders; called with `args`, it "
                          "returns a `torch.nn.Module` whose `layers` are sharded one by one (`megaspec explain "
                          "MS218`). Not with `preset:`.")
    code: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list, max_length=16, description="Folders holding your model's code, relative to the file "
                                                          "that lists them (the spec, or its base): put on `sys.path` "
                                                          "and shipped to the Modal image.")
    args: dict[str, JsonValue] = Field(default_factory=dict, description="Keyword arguments of the `entry` callable.")

    n_layers: Int | None = Field(None, ge=1, le=256, description="Transformer blocks.")
    d_model: Int | None = Field(None, ge=8, le=65536, description="Hidden width.")
    n_heads: Int | None = Field(None, ge=1, le=512, description="Attention (query) heads; divides `d_model`.")
    n_kv_heads: Int | None = Field(None, ge=1, le=512, description="Key/value heads (grouped-query attention); "
                                                                   "divides `n_heads`.")
    d_ff: Int | None = Field(None, ge=8, le=262144, description="Width of the SwiGLU MLP.")
    vocab_size: Int | None = Field(None, ge=2, le=1_048_576, description="Vocabulary size: the width of the "
                                   "logits; token ids of the data must be below it.")
    max_seq_len: Int | None = Field(None, ge=8, le=1_048_576, description="Longest sequence the model takes.")


class Eval(Section):
    """A validation loss on the `val/` shards of a folder made by `megaspec data prepare`."""

    every: Int = Field(ge=1, le=MAX_STEPS, description="Steps between evaluations; the last step is always "
                                                       "evaluated too.")
    batches: Int = Field(4, ge=1, le=100_000, description="Batches of `global_batch` sequences per evaluation: the "
                                                           "first ones of `val/`, the same every time.")


class Divergence(Section):
    """When a rising loss ends a run as `diverged` (a non-finite loss always stops it, as an error)."""

    factor: float = Field(3.0, gt=1, le=1.0e6, description="A logged loss above `factor` x the first logged loss "
                                                           "counts as diverging.")
    patience: Int = Field(3, ge=1, le=MAX_STEPS, description="Logged steps in a row above that line before the run "
                                                            "is `diverged`.")
    action: DivergenceAction = Field("stop", description="`stop`: end the run at that step; `flag`: finish "
                                                                "it; either way the receipt says `diverged`.")


class Train(Section):
    """The training loop: steps, batch geometry, optimizer, precision, compile."""

    steps: Int = Field(100, ge=1, le=MAX_STEPS, description="Optimizer steps.")
    warmup_steps: Int = Field(3, ge=0, le=MAX_STEPS, description="Steps after the first excluded from throughput (the first "
                                                   "always is); the learning rate has its own `lr_warmup_steps`.")
    lr_warmup_steps: Int | None = Field(None, ge=0, le=MAX_STEPS, description="Steps of linear learning-rate warmup "
                                        "before the cosine decay; default `min(100, steps // 10)`.")
    global_batch: Int | None = Field(None, ge=1, le=MAX_SEQUENCES, description="Sequences per optimizer step, over all ranks.")
    micro_batch: Int = Field(1, ge=1, le=MAX_SEQUENCES, description="Sequences per rank per forward.")
    seq_len: Int | None = Field(None, ge=8, le=MAX_SEQUENCES, description="Tokens per sequence; default: the model's `max_seq_len`. "
                                                 "The `tiny` preset takes any length.")
    lr: float = Field(3.0e-4, gt=0, le=1.0, description="Peak learning rate (AdamW, warmup then cosine).")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Final learning rate as a fraction of `lr`.")
    weight_decay: float = Field(0.1, ge=0, le=1, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, ge=0, le=1.0e6, description="Gradient-norm clipping; 0 disables it.")
    precision: Precision | None = Field(None, description="Default: bf16 on GPUs, fp32 on CPUs.")
    compile: bool = Field(False, description="`torch.compile` each block (Inductor); the first step compiles.")
    activation_checkpointing: ActivationCheckpointing = Field(
        "none", description="Recompute activations in backward: `selective` every second block, `full` every block.")
    seed: Int = Field(1234, ge=0, le=2**32 - 1, description="Random seed of the initial weights and synthetic data.")
    log_every: Int = Field(1, ge=1, le=MAX_STEPS, description="Steps between loss lines in the log.")
    eval: Eval | None = Field(None, description="Evaluate on the `val/` shards of `data.path` every `every` steps "
                                                "and at the end (e.g. `{every: 100, batches: 8}`).")
    divergence: Divergence = Field(default_factory=dict, validate_default=True)


class Data(Section):
    """What the loop reads: synthetic tokens or token shards."""

    source: DataSource = Field(
        "synthetic", description="`synthetic`: generated tokens (no data needed); `shards`: token files at `path`.")
    path: AbsPath | None = Field(None, description="The hot path the loop reads: a Volume or local disk. A folder "
                                                   "made by `megaspec data prepare` is read through its manifest: "
                                                   "`train/`, and `val/` for `train.eval`.")
    stage_from: AbsPath | None = Field(None, description="Copied into `path` before the measured loop, e.g. from "
                                                         "a bucket mount.")
    dtype: TokenDtype = Field("uint16", description="Token dtype of shards without a header; an llm.c header (what "
                                                    "`megaspec data prepare` writes) names its own.")


class Checkpoint(Section):
    """Distributed checkpoints (DCP) and resuming."""

    every: Int | None = Field(None, ge=1, le=MAX_STEPS, description="Steps between checkpoints; unset disables them.")
    resume: ResumePolicy = Field("auto", description="`auto`: continue from the latest complete "
                                                                 "checkpoint; `never`: always start fresh.")
    keep: Int = Field(2, ge=1, le=100, description="Checkpoints kept; older ones are deleted.")


class Distributed(Section):
    """The process group: timeouts, debug level, FSDP2 resharding."""

    timeout: Duration = Field("30m", validate_default=True, description="Collective timeout after the first step.")
    init_timeout: Duration | None = Field(None, description="Timeout of init and the first step (compile); "
                                                            "default: larger than `timeout`.")
    debug: Literal["OFF", "INFO", "DETAIL"] = Field(
        "INFO", description="`TORCH_DISTRIBUTED_DEBUG`; `DETAIL` checks every collective and costs ~30% throughput.")
    heartbeat: Literal["on", "off"] = Field("off", description="NCCL heartbeat monitor; `off` so a long compile "
                                                               "does not look like a dead worker.")
    autotune: bool = Field(False, description="Inductor max-autotune (slow; competes for memory).")
    reshard_after_forward: ReshardAfterForward = Field(
        "default", description="FSDP2 resharding after forward: `never` keeps parameters gathered (more memory, "
                               "less communication).")


# What W&B accepts in a project, entity or group name: no `/ \\ # ? % :`, at most 128 characters.
WandbName = Annotated[str, Field(pattern=r"^[^/\\#?%:\s]{1,128}$")]


class Wandb(Section):
    """Weights & Biases: each run is one W&B run whose id is the megaspec run id; online on Modal (the API
    key comes from a Modal Secret), offline on this machine (`<run dir>/wandb/`, `wandb sync` uploads it)."""

    project: WandbName = Field(description="The W&B project the runs log to.")
    entity: WandbName | None = Field(None, description="The W&B team or user (default: the API key's own).")
    group: WandbName | None = Field(None, description="The W&B run group (default: a sweep's id for its runs).")
    secret: Name = Field("wandb", description="The Modal Secret holding `WANDB_API_KEY`; list it in `secrets:`.")


class Tracking(Section):
    """Trackers that mirror each run's per-step metrics (the numbers in `progress.jsonl`)."""

    tensorboard: bool = Field(False, description="Write TensorBoard event files: `<run dir>/tensorboard/`, or "
                              "`tensorboard_dir/<run id>/` (the image needs the `tensorboard` package).")
    tensorboard_dir: str | None = Field(None, pattern=r"^/", description="An absolute folder for the event "
                                        "files, such as a Volume's mount; each run writes its own subfolder.")
    wandb: Wandb | None = Field(None, description="Mirror to Weights & Biases (the image needs the `wandb` package).")


# The receipt numbers `megaspec report` can rank runs by (compiler/runs/records.py computes them).
ObjectiveMetric = Literal["final_loss", "min_loss", "val_loss", "tokens_per_s", "mfu_pct", "step_time_p50_s", "step_time_p90_s",
                          "peak_mem_gib", "busbw_gbps", "cost_usd", "usd_per_mtok"]


class Objective(Section):
    """What makes a run of the sweep the best one."""

    metric: ObjectiveMetric = Field(description="The receipt number runs are ranked by, e.g. `final_loss`, or "
                                                "`val_loss` (the last validation loss of `train.eval`).")
    goal: Literal["min", "max"] = Field(description="`min` or `max`: which end of `metric` is best.")


class Sweep(Section):
    """A sweep template: `megaspec sweep` writes one spec per combination."""

    matrix: Annotated[dict[str, Annotated[list[Scalar], Field(min_length=1)]], AfterValidator(bounded_matrix)] = Field(
        min_length=1, description="Dotted field -> values, e.g. `train.lr: [1.0e-4, 3.0e-4]`; every combination "
                                  f"is a run, at most {MAX_SWEEP_RUNS:,}.")
    include: list[dict[str, Scalar]] = Field(default_factory=list, max_length=MAX_SWEEP_RUNS, description="Extra combinations to run.")
    exclude: list[dict[str, Scalar]] = Field(default_factory=list, max_length=MAX_SWEEP_RUNS, description="Combinations to leave out.")
    name: str | None = Field(None, description="Jinja2 template for each run's name.")
    max_parallel: Int | None = Field(None, ge=1, le=MAX_SWEEP_RUNS, description="Modal runs in flight at once; the others wait "
                                     "`planned` until a `collect` or `status` sees a free slot.")
    objective: Objective | None = Field(None, description="The best run in `megaspec report` (default: lowest "
                                        "final loss for train, highest bus bandwidth for bench).")


class Bench(Section):
    """The `bench` lane: collective bus bandwidth and GEMM throughput."""

    ops: list[BenchOp] = Field(default_factory=lambda: ["all_reduce", "all_gather", "gemm"], min_length=1,
                               description="Operations to measure.")
    sizes: list[Annotated[str, Field(pattern=r"^\d{1,6}(B|KiB|MiB|GiB)$")] | Annotated[Int, Field(ge=1, le=1 << 40)]] = Field(
        default_factory=lambda: ["1MiB", "16MiB", "128MiB"], min_length=1,
        description="Message sizes of the collectives: bytes, or `1MiB`-style.")
    iters: Int = Field(20, ge=1, le=10_000, description="Timed iterations per size.")
    warmup_iters: Int = Field(5, ge=0, le=1000, description="Untimed iterations before them.")
    gemm_dims: list[Annotated[Int, Field(ge=1, le=1 << 17)]] = Field(default_factory=lambda: [4096, 8192], min_length=1,
                                 description="Square GEMM sizes (N for an N x N x N matmul).")


class Validate(Section):
    """The `validate` lane: the acceptance checks a run must pass."""

    finite_loss: bool = Field(True, description="Every loss is finite.")
    max_final_loss: float | None = Field(None, gt=0, le=1.0e6, description="The last loss is at most this.")
    reference_receipt: str | None = Field(None, description="A receipt whose losses this run must reproduce.")
    loss_rtol: float = Field(0.0, ge=0, le=1, description="Relative tolerance against the reference losses.")


class Spec(Section):
    """A megaspec experiment spec, format version 1."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="megaspec spec v1")

    megaspec: Annotated[Literal[1], BeforeValidator(not_bool)] = Field(description="Spec format version: `1`.")
    name: Name = Field(description="The run's name: lowercase letters, digits, `.-_`; names the Modal app and "
                                   "the run ids.")
    lane: Lane = Field(
        "train", description="`train`, `bench` or `validate`: what the run measures; receipts of different lanes "
                             "are never compared.")
    extends: str | list[str] = Field(default_factory=list, description="Base spec files, relative to this file; "
                                                                       "this file's values win.")
    target: Target = Field("modal", description="`modal`: launch on Modal; `local`: run on this "
                                                                   "machine's CPUs.")
    # A block without a description here shows its class docstring on hover (`json_schema.py` copies it).
    resources: Resources = Field(default_factory=dict, validate_default=True)
    image: Image = Field(default_factory=dict, validate_default=True)
    volumes: Volumes = Field(default_factory=dict, validate_default=True)
    buckets: dict[str, Bucket] = Field(default_factory=dict, description="Object-storage buckets by label, mounted "
                                                                         "read-mostly.")
    secrets: list[Name] = Field(default_factory=list, description="Names of Modal Secrets, never values.")
    cache: Cache = Field(default_factory=dict, validate_default=True)
    preset: PresetName | None = Field(None, description="Model preset (`tiny` is the diagnostic one); `model:` fields "
                                                        "override its dimensions. No default: without it, `model:` gives "
                                                        "every dimension or names your own (`model.entry`), else MS102.")
    model: ModelOverrides = Field(default_factory=dict, validate_default=True, description="Overrides of the preset's "
                                  "dimensions, or your own model (`model.entry`).")
    train: Train = Field(default_factory=dict, validate_default=True)
    data: Data = Field(default_factory=dict, validate_default=True)
    checkpoint: Checkpoint = Field(default_factory=dict, validate_default=True)
    distributed: Distributed = Field(default_factory=dict, validate_default=True)
    sweep: Sweep | None = Field(None, description="Makes this file a sweep template: `megaspec sweep` writes one "
                                                  "spec per combination.")
    bench: Bench | None = Field(None, description="Settings of the `bench` lane.")
    validate_: Validate | None = Field(None, alias="validate", description="Settings of the `validate` lane.")
    tracking: Tracking | None = Field(None, description="Mirror per-step metrics to TensorBoard and W&B.")

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data: Any) -> Any:
        return integral_floats(data, cls)

    @model_validator(mode="after")
    def _no_nul(self) -> Self:
        if (errors := nul_errors(self)) is not None:
            raise errors
        return self


class BaseSpec(Spec):
    """A base file (`_*.yaml`): shared settings other specs `extends:`; it needs no `name` of its own."""

    # Built on first use: most lint runs never read a base, and building a second full schema costs ~8 ms.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, title="megaspec base spec v1", defer_build=True)

    name: Name | None = Field(None, description="A base needs no name: each spec that extends it names itself.")
