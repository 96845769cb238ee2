"""Receipt assembly: the plan, a lane's `LaneOutcome` and the ranks' status files -> one `Receipt`.

Rank 0 builds a receipt when its lane ends (ok or failed); the launcher then completes it, or
builds one when rank 0 could not, from the per-rank status and error files, and hands it to
`triage` for the status and the error that names the rank at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..contract import checkpoint_dirs, cost, memory
from ..contract.clock import seconds_between, utc_now
from ..contract.codes import VALIDATION_FAILED
from ..contract.plan import PLAN_VERSION, Plan
from ..contract.progress import read_record
from ..contract.rank_status import RankState, read_statuses
from ..contract.receipt import (
    CheckpointReport,
    DataReport,
    Distributed,
    EvalPoint,
    Metrics,
    Parallelism,
    PlanRef,
    RankReport,
    Receipt,
    RunError,
    SpecRef,
    Startup,
    Steps,
    read_receipt,
)
from ..contract.rundir import RECEIPT_FILE, error_files, rank_log_dirs, run_id_of
from ..rank.outcome import LaneOutcome
from ..rank.provenance import collect_provenance, describe_hardware
from ..state import cachestate
from ..train import tracking
from .acceptance import evaluate
from .triage import triage

THROUGHPUT_FIELDS = ("tokens_per_s", "tokens_per_s_per_device", "step_time_p50_s", "step_time_p90_s", "mfu_pct",
                     "peak_flop_per_s", "peak_device")


def build_receipt(plan: Plan, run_dir: Path, started_at: str, outcome: LaneOutcome,
                  statuses: list[RankState], *, status: str, error: RunError | None = None) -> Receipt:
    """A receipt from the plan, a lane's outcome and the ranks' statuses (rank 0 and the parent); a run
    that ended well but whose loss diverged is `diverged`."""
    per_rank = [RankReport(**s.report(None, None)) for s in sorted(statuses, key=lambda s: s.rank)]
    steps = None if plan.lane == "bench" else Steps(
        planned=plan.train.steps, completed=outcome.num_completed, warmup_excluded=outcome.excluded,
        measured=outcome.measured, resumed_from=outcome.resumed_from)
    return Receipt(
        megaspec_version=plan.megaspec_version, run_id=run_id_of(plan, run_dir), name=plan.name,
        lane=plan.lane, status="diverged" if status == "ok" and outcome.diverged else status,
        started_at=started_at, finished_at=utc_now(),
        spec=SpecRef(path=plan.run.spec_path, sha256=plan.run.spec_sha256),
        plan=PlanRef(sha256=plan.sha256(), plan_version=PLAN_VERSION),
        rehearsal=plan.run.rehearsal, substitutions=plan.run.substitutions,
        hardware=describe_hardware(plan, _observed(statuses)), distributed=_distributed(plan),
        parallelism=_parallelism(plan, outcome.num_fsdp_units), startup=_startup(plan, per_rank, run_dir),
        data=DataReport(source=plan.data.source, path_class=plan.data.path_class, path=plan.data.path,
                        **outcome.staged, **outcome.data),
        losses=outcome.losses, eval=_eval_points(plan, outcome.evals),
        metrics=_metrics(plan, outcome, per_rank), steps=steps, per_rank=per_rank,
        checkpoint=outcome.checkpoint or _checkpoints_on_disk(plan, run_dir),
        provenance=collect_provenance(plan), error=error, bench=outcome.bench,
        tracking=tracking.report(plan, run_dir), model=outcome.model,
        divergence=outcome.diverged, rerun_of=plan.run.rerun_of)


def _checkpoints_on_disk(plan: Plan, run_dir: Path) -> CheckpointReport | None:
    """When rank 0 was torn down before it could report its checkpoints (a peer was killed), the
    complete checkpoints on disk, which are what a resume will use."""
    root = checkpoint_dirs.root_for(plan, run_dir)
    if root is None:
        return None
    return CheckpointReport(dir=str(root), saved_steps=checkpoint_dirs.complete_steps(root))


def _observed(statuses: list[RankState]) -> list[str]:
    for s in statuses:
        if s.observed_devices:
            return s.observed_devices
    return sorted({s.device for s in statuses if s.device})


def _distributed(plan: Plan) -> Distributed:
    d = plan.distributed
    return Distributed(backend=d.backend, device=d.device, nodes=d.nodes, nproc_per_node=d.nproc_per_node,
                       world_size=d.world_size, max_restarts=d.max_restarts, init_timeout_s=d.init_timeout_s,
                       timeout_s=d.timeout_s, env=d.env)


def _parallelism(plan: Plan, num_units: int | None) -> Parallelism:
    bf16 = plan.train.precision == "bf16" and plan.distributed.device == "cuda"
    return Parallelism(param_dtype="bfloat16" if bf16 else "float32", reduce_dtype="float32",
                       reshard_after_forward=plan.train.reshard_after_forward,
                       activation_checkpointing=plan.train.activation_checkpointing, compile=plan.train.compile,
                       num_fsdp_units=num_units)


def _startup(plan: Plan, per_rank: list[RankReport], run_dir: Path) -> Startup:
    reports = [r.cache.model_dump() for r in per_rank if r.cache]
    state, agree = cachestate.agreed_state(reports)
    return Startup(cache_policy=plan.cache.policy, cache_dir=str(cachestate.cache_dir_for(plan, run_dir)),
                   seed=plan.cache.seed, seed_restored=any(r["state"] == "seeded" for r in reports), state=state,
                   ranks_agree=agree)


def _metrics(plan: Plan, outcome: LaneOutcome, per_rank: list[RankReport]) -> Metrics | None:
    """Throughput for train; never on the validate lane (a verdict is not a throughput claim)."""
    if plan.lane == "bench":
        return None
    fields = dict(outcome.metrics)
    if plan.lane == "validate":
        fields = {k: v for k, v in fields.items() if k not in THROUGHPUT_FIELDS}
    losses = outcome.losses
    mems = [r.peak_mem_gib for r in per_rank if r.peak_mem_gib is not None]
    # On CPU the measured peak is the process's RSS (Python and torch included): nothing to compare.
    est = memory.for_plan(plan) if plan.distributed.device == "cuda" else None
    estimated = est.allocated / memory.GIB if est is not None else None
    return Metrics(**fields, final_loss=losses[-1] if losses else None, min_loss=min(losses) if losses else None,
                   peak_mem_gib=max(mems) if mems else None, est_peak_mem_gib=estimated)


def complete_receipt(plan: Plan, run_dir: Path, started_at: str, parent_outcome: LaneOutcome,
                     launch_error: BaseException | None, node_rank: int) -> Receipt:
    """Rank 0's receipt (or a new one) + status files + error files + the launch outcome."""
    statuses = read_statuses(run_dir)
    receipt = _rank0_receipt(run_dir, started_at)
    if receipt is None:  # rank 0 never wrote one, or this is another node's launcher
        receipt = build_receipt(plan, run_dir, started_at, parent_outcome, list(statuses.values()),
                                status="ok" if launch_error is None else "error")
    if launch_error is not None and plan.lane != "bench":
        receipt = receipt.model_copy(update=_recovered_record(plan, run_dir, receipt))
    dumps = _error_files(run_dir, node_rank, plan.distributed.nproc_per_node)
    gathered = {r.rank: r.model_dump() for r in receipt.per_rank}
    for rank, s in statuses.items():
        gathered[rank] = s.report(dumps.get(rank), _log_dir(run_dir, node_rank, plan, rank))
    per_rank = [RankReport(**gathered[r]) for r in sorted(gathered)]
    finished_at = utc_now()
    update: dict[str, Any] = {"per_rank": per_rank, "startup": _startup(plan, per_rank, run_dir),
                              "finished_at": finished_at,
                              "failure_dumps": sorted(dumps.values()) + _flight_records(plan, run_dir)}
    if receipt.metrics is not None:
        update["metrics"] = receipt.metrics.model_copy(update={"wall_time_s": seconds_between(started_at,
                                                                                             finished_at)})
    if receipt.data is not None and parent_outcome.staged:
        update["data"] = receipt.data.model_copy(update=parent_outcome.staged)
    update.update(triage(plan, receipt, statuses, dumps, launch_error))
    update["cost"] = cost.of_attempt(plan, receipt.hardware, started_at, finished_at)
    receipt = receipt.model_copy(update=update)
    if plan.lane == "validate" and receipt.status == "ok":
        receipt = _with_verdict(plan, receipt)
    return Receipt.model_validate(receipt.model_dump())


def _recovered_record(plan: Plan, run_dir: Path, receipt: Receipt) -> dict[str, Any]:
    """What a failed run proved, when rank 0 was torn down before its receipt said so (a peer was
    killed, SIGTERM): the losses in progress.jsonl, and as many completed steps as losses (a step whose
    loss was never gathered across the ranks is not proven, whatever a rank's status file says)."""
    record = read_record(run_dir)
    losses = record.losses if len(record.losses) > len(receipt.losses) else receipt.losses
    steps = receipt.steps or Steps(planned=plan.train.steps, completed=0, warmup_excluded=0, measured=0)
    evals = record.evals if len(record.evals) > len(receipt.eval or []) else receipt.eval
    update: dict[str, Any] = {"losses": losses, "eval": _eval_points(plan, evals), "steps": steps.model_copy(update={
        "completed": max(steps.completed, len(losses)),
        "resumed_from": steps.resumed_from or record.resumed_from})}
    if receipt.metrics is not None and losses:
        update["metrics"] = receipt.metrics.model_copy(update={"final_loss": losses[-1], "min_loss": min(losses)})
    return update


def _eval_points(plan: Plan, evals: list | None) -> list[EvalPoint] | None:
    """The receipt's `eval`: the evaluations made, when the plan evaluates at all."""
    if plan.train.eval is None:
        return None
    return [EvalPoint.model_validate(e if isinstance(e, dict) else e.model_dump()) for e in evals or []]


def _with_verdict(plan: Plan, receipt: Receipt) -> Receipt:
    """The validate lane's verdict; a failed one is also a diagnostic (the run itself completed)."""
    verdict = evaluate(plan, receipt)
    diagnostics = list(receipt.diagnostics)
    if not verdict.passed:
        diagnostics.append(RunError(code=VALIDATION_FAILED.code, stage="receipt", rank=None, step=None,
                                    message="; ".join(verdict.reasons)))
    return receipt.model_copy(update={"verdict": verdict, "diagnostics": diagnostics})


def _rank0_receipt(run_dir: Path, started_at: str) -> Receipt | None:
    try:
        receipt = read_receipt(run_dir / RECEIPT_FILE)
    except (OSError, ValueError):
        return None
    return receipt if receipt.started_at == started_at else None


def _error_files(run_dir: Path, node_rank: int, nproc: int) -> dict[int, str]:
    """Global rank -> its error.json (`logs/<run>_<id>/attempt_<n>/<local_rank>/error.json`)."""
    found = {}
    for path in error_files(run_dir):
        found[node_rank * nproc + int(path.parent.name)] = str(path)
    return found


def _flight_records(plan: Plan, run_dir: Path) -> list[str]:
    """NCCL flight-recorder dumps (one file per rank, written on a watchdog timeout)."""
    found: set[str] = set()
    for rel in plan.distributed.run_dir_env.values():
        prefix = run_dir / rel
        found.update(str(p) for p in prefix.parent.glob(f"{prefix.name}*") if p.is_file())
    return sorted(found)


def _log_dir(run_dir: Path, node_rank: int, plan: Plan, rank: int) -> str | None:
    local = rank - node_rank * plan.distributed.nproc_per_node
    dirs = rank_log_dirs(run_dir, local)
    return str(dirs[-1]) if dirs else None
