"""Entry point of the runtime: plan.json -> one worker per rank (elastic launcher) -> receipt.

The parent restores the compile-cache seed and stages data, then spawns the ranks with
`elastic_launch` (c10d rendezvous, no restarts, per-rank log files and error.json). Each rank runs
`dist.rank_main`; rank 0 writes the receipt in `finally`. Whatever happened, the parent then
completes the receipt from the per-rank status and error files, so a hang names the rank that
never arrived, not the rank that waited.

    python -m megaspec.runtime.launch --plan plan.json --run-dir runs/x
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from . import cachestate, checkpoint, cost, data, memory
from .dist import rank_main
from .errors import RunFailure, attribute
from .files import write_text_atomic
from .plan import Plan, read_plan
from .provenance import collect_provenance, describe_hardware
from .receipt import (
    BenchReport,
    CheckpointReport,
    DataReport,
    Distributed,
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
    write_receipt,
)
from .status import rank_report, read_statuses

EventFn = Callable[[dict[str, Any]], None]
THROUGHPUT_FIELDS = ("tokens_per_s", "tokens_per_s_per_device", "step_time_p50_s", "step_time_p90_s", "mfu_pct",
                     "peak_flop_per_s", "peak_device")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ----------------------------------------------------------------------------- launcher side


def launch_config(plan: Plan, run_dir: Path, node_rank: int, master_addr: str | None,
                  master_port: int) -> LaunchConfig:
    """c10d rendezvous (not etcd), no restarts (not 3), spawn, per-rank logs in the run dir."""
    d = plan.distributed
    endpoint = f"{master_addr}:{master_port}" if master_addr else "localhost:0"
    return LaunchConfig(min_nodes=d.nodes, max_nodes=d.nodes, nproc_per_node=d.nproc_per_node,
                        run_id=plan.run.run_id or run_dir.name, rdzv_backend="c10d", rdzv_endpoint=endpoint,
                        rdzv_configs={"is_host": node_rank == 0, "timeout": d.init_timeout_s},
                        max_restarts=d.max_restarts, monitor_interval=0.1, start_method="spawn",
                        logs_specs=DefaultLogsSpecs(log_dir=str(run_dir / "logs"), redirects=Std.ALL),
                        local_addr=master_addr if node_rank == 0 else None)


class ProgressTail:
    """Tails `<run_dir>/progress.jsonl` in a thread and hands each event to `on_event`."""

    def __init__(self, path: Path, on_event: EventFn | None):
        self.path, self.on_event, self.offset = path, on_event, 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ProgressTail:
        if self.on_event:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on_event:
            self.stop_flag.set()
            self.thread.join()

    def _run(self) -> None:
        while not self.stop_flag.wait(0.2):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        if not self.path.exists():
            return
        with open(self.path) as f:
            f.seek(self.offset)
            for line in f:
                if not line.endswith("\n"):
                    break  # a half-written line: read it next time
                self.offset += len(line)
                self.on_event(json.loads(line))


def run_plan(plan: Plan, run_dir: str | Path, *, node_rank: int = 0, master_addr: str | None = None,
             master_port: int = 29500, on_event: EventFn | None = None) -> dict[str, Any]:
    """Run a plan on this node and return its receipt (as a dict).

    A failed run does not raise: its receipt says what failed. Ctrl-C re-raises, after the
    receipt (status `interrupted`) is written.
    """
    run_dir = Path(run_dir)
    _fresh_run_dir(run_dir)
    write_text_atomic(run_dir / "plan.json", plan.to_json())  # the same bytes `megaspec compile` writes
    started_at, outcome = utc_now(), {}
    launch_error: BaseException | None = None
    try:
        seeded = cachestate.restore_seed_dir(plan, cachestate.cache_dir_for(plan, run_dir))
        outcome["staged"] = data.stage(plan)
        config = launch_config(plan, run_dir, node_rank, master_addr, master_port)
        with ProgressTail(run_dir / "progress.jsonl", on_event):
            elastic_launch(config, rank_main)(plan.to_json(), str(run_dir), seeded, started_at)
    except (KeyboardInterrupt, Exception) as exc:  # every ending is triaged into the receipt
        launch_error = exc
    receipt = complete_receipt(plan, run_dir, started_at, outcome, launch_error, node_rank)
    if node_rank == 0:
        write_receipt(run_dir / "receipt.json", receipt)
    if isinstance(launch_error, SignalException):  # SIGINT/SIGTERM reach the agent as this
        raise KeyboardInterrupt(str(launch_error)) from launch_error  # on Modal: retried, then resumed
    if isinstance(launch_error, KeyboardInterrupt):
        raise launch_error
    return receipt.model_dump(mode="json")


ATTEMPT_FILES = ("ranks", "logs", "progress.jsonl", "receipt.json")


def _fresh_run_dir(run_dir: Path) -> None:
    """Move a previous attempt's files (a retry reuses the run dir) to `attempts/<n>/`: its error
    files stay readable and are never mistaken for this attempt's. Checkpoints and caches stay."""
    run_dir.mkdir(parents=True, exist_ok=True)
    previous = [run_dir / name for name in ATTEMPT_FILES if (run_dir / name).exists()]
    if not previous:
        return
    archive = run_dir / "attempts" / str(len(list((run_dir / "attempts").glob("*"))) + 1)
    archive.mkdir(parents=True)
    for path in previous:
        shutil.move(str(path), archive / path.name)


# ----------------------------------------------------------------------------- receipt assembly


def build_receipt(plan: Plan, run_dir: Path, started_at: str, outcome: dict[str, Any],
                  statuses: list[dict[str, Any]], *, status: str, error: RunError | None = None) -> Receipt:
    """A receipt from the plan, a lane's outcome and the ranks' statuses (rank 0 and the parent)."""
    t = plan.train
    per_rank = [RankReport(**rank_report(s, None, None)) for s in sorted(statuses, key=lambda s: s["rank"])]
    losses = outcome.get("losses", [])
    return Receipt(
        megaspec_version=plan.megaspec_version, run_id=plan.run.run_id or run_dir.name, name=plan.name,
        lane=plan.lane, status=status, started_at=started_at, finished_at=utc_now(),
        spec=SpecRef(path=plan.run.spec_path, sha256=plan.run.spec_sha256),
        plan=PlanRef(sha256=plan.comparison_hash(), plan_version=plan.plan_version),
        rehearsal=plan.run.rehearsal, substitutions=plan.run.substitutions,
        hardware=describe_hardware(plan, _observed(statuses)), distributed=_distributed(plan),
        parallelism=_parallelism(plan, outcome.get("num_fsdp_units")), startup=_startup(plan, per_rank, run_dir),
        data=_data(plan, outcome), losses=losses, metrics=_metrics(plan, outcome, per_rank),
        steps=Steps(planned=t.steps, completed=outcome.get("completed", len(losses)),
                    warmup_excluded=outcome.get("excluded", 0), measured=outcome.get("measured", 0),
                    resumed_from=outcome.get("resumed_from")) if plan.lane != "bench" else None,
        per_rank=per_rank,
        checkpoint=_checkpoint_report(plan, run_dir, outcome),
        provenance=collect_provenance(plan), error=error,
        bench=BenchReport(**outcome["bench"]) if "bench" in outcome else None)


def _checkpoint_report(plan: Plan, run_dir: Path, outcome: dict[str, Any]) -> CheckpointReport | None:
    """Rank 0's account of its checkpoints; when rank 0 was torn down before it could give one (a peer
    was killed), the complete checkpoints on disk, which are what a resume will use."""
    if "checkpoint" in outcome:
        return CheckpointReport(**outcome["checkpoint"])
    root = checkpoint.root_for(plan, run_dir)
    if root is None:
        return None
    return CheckpointReport(dir=str(root), saved_steps=checkpoint.complete_steps(root))


def _observed(statuses: list[dict[str, Any]]) -> list[str]:
    for s in statuses:
        if s.get("observed_devices"):
            return s["observed_devices"]
    return sorted({s["device"] for s in statuses if s.get("device")})


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
    return Startup(cache_policy=plan.cache.policy, cache_dir=str(cachestate.cache_dir_for(plan, run_dir)), seed=plan.cache.seed,
                   seed_restored=any(r["state"] == "seeded" for r in reports), state=state, ranks_agree=agree)


def _data(plan: Plan, outcome: dict[str, Any]) -> DataReport:
    return DataReport(source=plan.data.source, path_class=plan.data.path_class, path=plan.data.path,
                      **outcome.get("staged", {}), **outcome.get("data", {}))


def _metrics(plan: Plan, outcome: dict[str, Any], per_rank: list[RankReport]) -> Metrics | None:
    """Throughput for train; never on the validate lane (a verdict is not a throughput claim)."""
    if plan.lane == "bench":
        return None
    fields = dict(outcome.get("metrics", {}))
    if plan.lane == "validate":
        fields = {k: v for k, v in fields.items() if k not in THROUGHPUT_FIELDS}
    losses = outcome.get("losses", [])
    mems = [r.peak_mem_gib for r in per_rank if r.peak_mem_gib is not None]
    # On CPU the measured peak is the process's RSS (Python and torch included): nothing to compare.
    estimated = memory.for_plan(plan).allocated / memory.GIB if plan.distributed.device == "cuda" else None
    return Metrics(**fields, final_loss=losses[-1] if losses else None, min_loss=min(losses) if losses else None,
                   peak_mem_gib=max(mems) if mems else None, est_peak_mem_gib=estimated)


def complete_receipt(plan: Plan, run_dir: Path, started_at: str, parent_outcome: dict[str, Any],
                     launch_error: BaseException | None, node_rank: int) -> Receipt:
    """Rank 0's receipt (or a new one) + status files + error files + the launch outcome."""
    statuses = read_statuses(run_dir)
    receipt = _rank0_receipt(run_dir, started_at)
    if receipt is None:  # rank 0 never wrote one, or this is another node's launcher
        receipt = build_receipt(plan, run_dir, started_at, parent_outcome, list(statuses.values()),
                                status="ok" if launch_error is None else "error")
    dumps = _error_files(run_dir, node_rank, plan.distributed.nproc_per_node)
    gathered = {r.rank: r.model_dump() for r in receipt.per_rank}
    for rank, s in statuses.items():
        gathered[rank] = rank_report(s, dumps.get(rank), _log_dir(run_dir, node_rank, plan, rank))
    per_rank = [RankReport(**gathered[r]) for r in sorted(gathered)]
    finished_at = utc_now()
    update: dict[str, Any] = {"per_rank": per_rank, "startup": _startup(plan, per_rank, run_dir),
                              "finished_at": finished_at,
                              "failure_dumps": sorted(dumps.values()) + _flight_records(plan, run_dir),
                              "data": receipt.data}
    if receipt.metrics is not None:
        update["metrics"] = receipt.metrics.model_copy(update={"wall_time_s": _seconds_between(started_at,
                                                                                              finished_at)})
    if receipt.data is not None and parent_outcome.get("staged"):
        update["data"] = receipt.data.model_copy(update=parent_outcome["staged"])
    update.update(_triage(plan, receipt, statuses, dumps, launch_error))
    update["cost"] = cost.of_attempt(plan, receipt.hardware, started_at, finished_at)
    receipt = receipt.model_copy(update=update)
    if plan.lane == "validate" and receipt.status == "ok":
        receipt = _with_verdict(plan, receipt)
    return Receipt.model_validate(receipt.model_dump())


def _with_verdict(plan: Plan, receipt: Receipt) -> Receipt:
    """The validate lane's verdict; a failed one is also a diagnostic (the run itself completed)."""
    from .acceptance import evaluate

    verdict = evaluate(plan, receipt)
    diagnostics = list(receipt.diagnostics)
    if not verdict.passed:
        diagnostics.append(RunError(code="MS810", stage="receipt", rank=None, step=None,
                                    message="; ".join(verdict.reasons)))
    return receipt.model_copy(update={"verdict": verdict, "diagnostics": diagnostics})


def _seconds_between(start: str, end: str) -> float:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (dt.datetime.strptime(end, fmt) - dt.datetime.strptime(start, fmt)).total_seconds()


def _rank0_receipt(run_dir: Path, started_at: str) -> Receipt | None:
    try:
        receipt = read_receipt(run_dir / "receipt.json")
    except (OSError, ValueError):
        return None
    return receipt if receipt.started_at == started_at else None


def _triage(plan: Plan, receipt: Receipt, statuses: dict[int, dict[str, Any]], dumps: dict[int, str],
            launch_error: BaseException | None) -> dict[str, Any]:
    """status, error and diagnostics for the receipt, from how the launch ended."""
    diagnostics = list(receipt.diagnostics)
    _, ranks_agree = cachestate.agreed_state([s["cache"] for s in statuses.values() if s.get("cache")])
    if not ranks_agree:
        diagnostics.append(RunError(code="MS811", stage="compile", rank=None, step=1,
                                    message="ranks started from different compile-cache states; seed every rank"))
    if launch_error is None:
        return {"status": receipt.status, "error": receipt.error, "diagnostics": diagnostics}
    if isinstance(launch_error, (KeyboardInterrupt, SignalException)):  # Ctrl-C, or SIGTERM (preemption)
        return {"status": "interrupted", "diagnostics": diagnostics,
                "error": RunError(code="MS809", stage="train", rank=None, step=None, message="interrupted")}
    if isinstance(launch_error, RunFailure):
        return {"status": "error", "diagnostics": diagnostics,
                "error": RunError(code=launch_error.code, stage=launch_error.stage or "bootstrap", rank=None,
                                  step=None, message=str(launch_error))}
    if not isinstance(launch_error, ChildFailedError):
        return {"status": "error", "diagnostics": diagnostics,
                "error": RunError(code="MS808", stage="bootstrap", rank=None, step=None,
                                  message=f"{type(launch_error).__name__}: {launch_error}")}
    if receipt.status == "ok" and all(s.get("phase") in ("teardown", "done") for s in statuses.values()):
        diagnostics.append(RunError(code="MS804", stage="teardown", rank=None, step=None,
                                    message="a rank exited non-zero after the receipt was written"))
        return {"status": "ok", "error": None, "diagnostics": diagnostics}
    exitcodes = {rank: f.exitcode for rank, f in launch_error.failures.items()}
    if plan.distributed.nodes == 1:
        for rank in range(plan.distributed.world_size):
            statuses.setdefault(rank, {"rank": rank, "phase": "bootstrap", "last_step": 0})
    culprit = attribute(statuses, exitcodes)
    error = RunError(code=culprit["code"], stage=culprit["stage"], rank=culprit["rank"], step=culprit["step"],
                     message=culprit["message"], error_file=dumps.get(culprit["rank"]))
    return {"status": "error", "error": error, "diagnostics": diagnostics}


def _error_files(run_dir: Path, node_rank: int, nproc: int) -> dict[int, str]:
    """Global rank -> its error.json (`logs/<run>_<id>/attempt_<n>/<local_rank>/error.json`)."""
    found = {}
    for path in sorted((run_dir / "logs").glob("*/attempt_*/*/error.json")):
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
    dirs = sorted((run_dir / "logs").glob(f"*/attempt_*/{local}"))
    return str(dirs[-1]) if dirs else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m megaspec.runtime.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="plan.json written by `megaspec compile`")
    parser.add_argument("--run-dir", required=True, help="where logs, status files and the receipt go")
    parser.add_argument("--node-rank", type=int, default=0)
    parser.add_argument("--master-addr", default=None)
    parser.add_argument("--master-port", type=int, default=29500)
    args = parser.parse_args(argv)
    receipt = run_plan(read_plan(args.plan), args.run_dir, node_rank=args.node_rank,
                       master_addr=args.master_addr, master_port=args.master_port)
    error = receipt.get("error")
    if error:
        print(f"error[{error['code']}] stage {error['stage']}, rank {error['rank']}: {error['message']}",
              file=sys.stderr)
    verdict = receipt.get("verdict")
    if verdict and not verdict["passed"]:
        print("validation failed: " + "; ".join(verdict["reasons"]), file=sys.stderr)
    print(f"receipt: {Path(args.run_dir) / 'receipt.json'} ({receipt['status']})")
    return 0 if receipt["status"] == "ok" and (not verdict or verdict["passed"]) else 1


if __name__ == "__main__":
    sys.exit(main())
