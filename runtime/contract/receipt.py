"""The runtime's output contract: the versioned receipt of one run. Pure pydantic, no torch.

Rank 0 writes it when its lane ends, or with the error when it fails; the launcher completes it
with the per-rank status files and error files, or builds it when rank 0 could not. Every number carries its unit as a suffix. Receipts are
compared only within one comparison class. The JSON Schema in
`receipt.schema.json` is generated from these models and pinned by a freshness test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .artifact import Artifact
from .codes import RUNTIME_CODES, RuntimeCode
from .files import write_text_atomic
from .vocabulary import DivergenceAction, Lane, Outcome, WandbMode

# v2: `cost`; v3: `tracking` names each tracker's run (the TensorBoard event file, the W&B run), where v2
# had `tracking.tensorboard_dir`. v1 and v2 receipts are refused: `UPGRADES` holds no way up from them.
SCHEMA_VERSION = "megaspec.receipt.v3"
SCHEMA_PATH = Path(__file__).with_name("receipt.schema.json")

# The stages of one rank, in order: the receipt's `error.stage`, the status files' phases, the drills.
RankStage = Literal["bootstrap", "init", "compile", "first-step", "train", "checkpoint", "receipt", "teardown"]
STAGES: tuple[str, ...] = get_args(RankStage)
CacheState = Literal["cold", "warm", "seeded", "mixed", "uncompiled"]


class _Part(BaseModel):
    # A non-finite number (a NaN loss) is written as the string "NaN", "Infinity" or "-Infinity" and read
    # back as that float: JSON has no literal for it, and pydantic's default (null) could not be read back.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class RunError(_Part):
    """A typed failure: which code, at which stage, on which rank, at which step."""

    code: RuntimeCode  # MS8xx
    rule: str = ""  # kebab-case name of the code, filled from RUNTIME_CODES
    stage: RankStage
    rank: int | None
    step: int | None
    message: str
    error_file: str | None = None

    @model_validator(mode="after")
    def _name_the_code(self) -> RunError:
        if not self.rule:
            self.rule = RUNTIME_CODES[self.code]
        return self


class SpecRef(_Part):
    path: str
    sha256: str


class PlanRef(_Part):
    sha256: str  # plan.sha256(): the experiment this receipt is of
    plan_version: int


class Hardware(_Part):
    """Requested vs observed: an H100 request served by an H200 must show here."""

    requested_gpu: str | None  # "H100"; None for CPU runs
    requested_gpu_count: int  # per node
    requested_exact: bool
    observed_devices: list[str]  # torch.cuda.get_device_name for every device, or ["cpu"]
    observed_gpu_count: int
    matches_request: bool | None  # None when nothing was requested (CPU) or nothing observed


class Distributed(_Part):
    mode: Literal["fsdp2"] = "fsdp2"
    launcher: Literal["elastic_launch"] = "elastic_launch"
    backend: str
    device: str
    nodes: int
    nproc_per_node: int
    world_size: int
    max_restarts: int
    init_timeout_s: int
    timeout_s: int
    env: dict[str, str]


class ModelReport(_Part):
    """The user's own model (`model.entry`) as the rank built it: what ran, and what was counted on it."""

    entry: str
    args: dict[str, Any]
    code_sha256: str  # of the `model.code` folders as compiled (runtime/contract/user_code.py)
    num_params: int  # each parameter once, tied ones included once
    flops_per_token: int | None  # `flops_per_token(seq_len)`, else counted on one micro-batch; None: neither


class Parallelism(_Part):
    param_dtype: str
    reduce_dtype: str
    reshard_after_forward: str
    activation_checkpointing: str
    compile: bool
    num_fsdp_units: int | None = None


class CacheReport(_Part):
    """What one rank found in TORCHINDUCTOR_CACHE_DIR before compiling, and what step 1 hit."""

    state: CacheState
    pre_files: dict[str, int] = Field(default_factory=dict)  # {"fxgraph": n, "aotautograd": n}
    fxgraph_hits: int | None = None
    fxgraph_misses: int | None = None
    aot_hits: int | None = None
    aot_misses: int | None = None


class Startup(_Part):
    cache_policy: str
    cache_dir: str | None
    seed: str | None
    seed_restored: bool
    state: CacheState  # "mixed" when ranks disagree
    ranks_agree: bool


class DataReport(_Part):
    source: str
    path_class: str
    path: str | None
    staged_from: str | None = None
    staged_bytes: int | None = None
    staged_s: float | None = None
    num_files: int | None = None  # shards checked before launch
    num_tokens: int | None = None
    micro_steps_available: int | None = None
    micro_steps_needed: int | None = None
    tokens_dropped: int | None = None
    tokenizer: str | None = None  # a prepared folder's (`megaspec data prepare`): its tokenizer and corpus
    tokenizer_sha256: str | None = None
    corpus_sha256: str | None = None
    val_num_files: int | None = None  # the `val/` shards `train.eval` reads, checked before launch
    val_num_tokens: int | None = None


class Steps(_Part):
    planned: int
    completed: int
    warmup_excluded: int  # step 1 plus train.warmup_steps
    measured: int
    resumed_from: int | None = None


class Metrics(_Part):
    tokens_per_s: float | None = None  # omitted on the validate lane: never a throughput claim
    tokens_per_s_per_device: float | None = None
    step_time_p50_s: float | None = None
    step_time_p90_s: float | None = None
    mfu_pct: float | None = None  # None on CPU and for unknown devices
    peak_flop_per_s: float | None = None
    peak_device: str | None = None
    flops_per_token: int | None = None
    final_loss: float | None = None
    min_loss: float | None = None
    peak_mem_gib: float | None = None  # CUDA max allocated (the highest rank), or max RSS on CPU
    est_peak_mem_gib: float | None = None  # runtime/contract/memory.py's allocated peak, before launch; CUDA only
    wall_time_s: float | None = None


class Cost(_Part):
    """USD at the dated list prices (runtime/contract/cost.py): the attempt beside the estimate made before launch."""

    prices_as_of: str
    gpu_type: str | None  # the observed GPU in Modal's vocabulary; None on CPU
    usd_per_gpu_hour: float | None  # the billed type's list price; None when it has none
    gpu_seconds: float  # observed GPUs x the attempt's wall time
    usd: float | None  # GPUs + CPU + memory over the billed time (cost.py); 0 for local runs; None: unpriced GPU
    est_usd: float | None  # one attempt, estimated before launch (containers' GPUs, CPU and memory)
    est_duration_s: int | None
    est_worst_case_usd: float | None  # every attempt running to its timeout
    # The split of `usd` (gpu + cpu + memory; startup is the share of them before the launcher started),
    # the type billed (an upgraded request is billed as requested), the billed time, and the prices' source.
    billed_gpu_type: str | None = None
    billed_s: float | None = None  # wall time + startup_s
    startup_s: float | None = None  # the container's start-up before the launcher, where measured (Modal)
    gpu_usd: float | None = None
    cpu_usd: float | None = None
    memory_usd: float | None = None
    startup_usd: float | None = None
    price_source: str | None = None


class TensorBoardRun(_Part):
    event_file: str  # relative to the run dir; absolute when `tracking.tensorboard_dir` is outside it (a Volume)


class WandbRun(_Part):
    run_id: str  # the megaspec run id
    project: str
    entity: str | None
    group: str | None
    mode: WandbMode
    dir: str  # this attempt's W&B folder, relative to the run dir: `wandb sync <run dir>/<dir>` uploads it


class TrackingReport(_Part):
    """Each tracker's run, named only when its files are really there."""

    tensorboard: TensorBoardRun | None = None
    wandb: WandbRun | None = None


class EvalPoint(_Part):
    """One evaluation of `train.eval`: the global mean loss on the `val/` shards after `step`."""

    step: int
    loss: float


class RankReport(_Part):
    rank: int
    host: str | None = None
    pid: int | None = None
    phase: str  # last phase this rank reported
    last_step: int  # last completed optimizer step (0: none)
    device: str | None = None
    first_forward_s: float | None = None  # wall time of the first forward (compile and peer waits included)
    first_step_s: float | None = None
    compile_s: float | None = None  # first step minus the steady step time: compile + first-use cost
    cache: CacheReport | None = None
    peak_mem_gib: float | None = None
    error_file: str | None = None
    log_dir: str | None = None


class CheckpointReport(_Part):
    dir: str | None
    saved_steps: list[int] = Field(default_factory=list)
    resumed_from: int | None = None
    save_s: float | None = None
    load_s: float | None = None
    skipped: list[str] = Field(default_factory=list)  # newer checkpoints passed over on resume: `step-N: why`


class Provenance(_Part):
    git_sha: str | None
    git_dirty: bool | None
    megaspec: str | None
    torch: str | None
    modal: str | None
    python: str
    cuda: str | None = None
    nccl: str | None = None
    host: str
    image_sha256: str | None = None  # of the plan's image definition: a changed image is a new class
    modal_task_id: str | None = None
    modal_region: str | None = None
    modal_cloud_provider: str | None = None
    modal_image_id: str | None = None


class DivergenceReport(_Part):
    """Why the receipt says `diverged`: the loss stayed above `factor` x the first logged loss for
    `patience` logged steps in a row, the last of them `step`."""

    step: int
    loss: float  # the loss at `step`
    first_loss: float
    factor: float
    patience: int
    action: DivergenceAction  # stop: the run ended at `step`; flag: it went on to its last step


class BenchResult(_Part):
    op: str  # all_reduce | all_gather | gemm
    size_bytes: int | None = None
    dims: int | None = None
    dtype: str
    time_s: float
    algbw_gbps: float | None = None
    busbw_gbps: float | None = None
    tflops: float | None = None


class BenchReport(_Part):
    backend: str
    devices: list[str]
    torch: str | None
    nccl: str | None
    results: list[BenchResult]


class Verdict(_Part):
    passed: bool
    checks: dict[str, bool]  # criterion -> passed
    reasons: list[str]  # one line per failed check
    reference_receipt: str | None = None


class Receipt(_Part, Artifact):
    KIND = "receipt"

    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION
    megaspec_version: str
    run_id: str
    name: str
    lane: Lane
    status: Outcome
    started_at: str  # ISO 8601 UTC
    finished_at: str | None = None
    spec: SpecRef
    plan: PlanRef
    rehearsal: bool
    substitutions: list[str]
    hardware: Hardware
    distributed: Distributed
    parallelism: Parallelism
    startup: Startup | None = None
    data: DataReport | None = None
    steps: Steps | None = None
    losses: list[float] = Field(default_factory=list)  # global mean loss of steps 1..completed
    eval: list[EvalPoint] | None = None  # `train.eval`'s validation losses, in step order
    metrics: Metrics | None = None
    cost: Cost | None = None
    per_rank: list[RankReport] = Field(default_factory=list)
    checkpoint: CheckpointReport | None = None
    provenance: Provenance
    error: RunError | None = None
    diagnostics: list[RunError] = Field(default_factory=list)  # non-fatal: teardown fault, cache skew
    failure_dumps: list[str] = Field(default_factory=list)  # per-rank error.json paths
    bench: BenchReport | None = None
    verdict: Verdict | None = None
    tracking: TrackingReport | None = None
    model: ModelReport | None = None  # only for the user's own model
    divergence: DivergenceReport | None = None  # set when status is `diverged`
    rerun_of: str | None = None  # the run id this run repeats (`megaspec rerun`), from the plan

    def non_finite_loss(self) -> str | None:
        """The first loss that is not a finite number (`losses[3] = nan`), or None: such a run did not succeed,
        whatever its status says."""
        named = [(f"losses[{i}]", x) for i, x in enumerate(self.losses)]
        named += [(f"eval at step {p.step}", p.loss) for p in self.eval or []]
        if self.metrics is not None:
            named += [("metrics.final_loss", self.metrics.final_loss), ("metrics.min_loss", self.metrics.min_loss)]
        return next((f"{name} = {x}" for name, x in named if x is not None and not math.isfinite(x)), None)


def write_receipt(path: str | Path, receipt: Receipt) -> Path:
    """Write atomically (temp file, fsync, rename): a crash never leaves half a receipt."""
    return write_text_atomic(path, receipt.model_dump_json(indent=2) + "\n")


def read_receipt(path: str | Path) -> Receipt:
    """Read a receipt file: its version checked first, a previous version's upgraded (`artifact.py`)."""
    return Receipt.read(path)


def receipt_schema() -> str:
    """The committed JSON Schema text (deterministic: sorted keys, trailing newline)."""
    schema = Receipt.model_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m megaspec.runtime.contract.receipt > runtime/contract/receipt.schema.json
    print(receipt_schema(), end="")
