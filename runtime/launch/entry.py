"""Entry point of the runtime: plan.json -> one worker per rank (elastic launcher) -> receipt.

The parent restores the compile-cache seed and stages data, then starts the ranks with
`elastic_launch` (c10d rendezvous, no restarts, per-rank log files and error.json), forked from the
fork server of `fork_server.py`, which imported the rank code once. Each rank runs `rank_main.rank_main`;
rank 0 writes the receipt when its lane ends, or an error receipt when it fails. Whatever happened, the
parent then completes the receipt from the per-rank status and error files, so a hang names the rank that
never arrived, not the rank that waited.

    python -m megaspec.runtime.launch --plan plan.json --run-dir runs/x
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from ..contract.checkpoint_dirs import remove_unfinished, root_for
from ..contract.clock import utc_now
from ..contract.errors import Interrupted, PlanMismatch, launcher_signals, signal_of
from ..contract.files import remove_temp_files, write_text_atomic
from ..contract.plan import Plan, read_plan
from ..contract.progress import EventFn, ProgressTail
from ..contract.receipt import write_receipt
from ..contract.rundir import LOGS_DIR, PLAN_FILE, RECEIPT_FILE, archive_previous_attempt, run_id_of
from ..evidence.assemble import complete_receipt
from ..rank import drills
from ..rank.outcome import LaneOutcome
from ..state import cachestate, data
from . import fork_server


def launch_config(plan: Plan, run_dir: Path, node_rank: int, master_addr: str | None,
                  master_port: int, start_method: str) -> LaunchConfig:
    """c10d rendezvous (not etcd), no restarts (not 3), per-rank logs in the run dir."""
    d = plan.distributed
    endpoint = f"{master_addr}:{master_port}" if master_addr else "localhost:0"
    return LaunchConfig(min_nodes=d.nodes, max_nodes=d.nodes, nproc_per_node=d.nproc_per_node,
                        run_id=run_id_of(plan, run_dir), rdzv_backend="c10d", rdzv_endpoint=endpoint,
                        rdzv_configs={"is_host": node_rank == 0, "timeout": d.init_timeout_s},
                        max_restarts=d.max_restarts, monitor_interval=0.1, start_method=start_method,
                        logs_specs=DefaultLogsSpecs(log_dir=str(run_dir / LOGS_DIR), redirects=Std.ALL),
                        local_addr=master_addr if node_rank == 0 else None)


def run_plan(plan: Plan, run_dir: str | Path, *, node_rank: int = 0, master_addr: str | None = None,
             master_port: int = 29500, on_event: EventFn | None = None,
             compiled_for: str | None = None) -> dict[str, Any]:
    """Run a plan on this node and return its receipt (as a dict).

    A failed run does not raise: its receipt says what failed, a plan other than `compiled_for` (the
    hash a generated app was compiled for) included, so Modal's retries never pay for it again. A signal (Ctrl-C, SIGTERM) raises
    `Interrupted` (a KeyboardInterrupt naming the signal), after the receipt (`interrupted`) is written.
    """
    run_dir = Path(run_dir)
    archive_previous_attempt(run_dir)
    remove_leftovers(plan, run_dir)
    write_text_atomic(run_dir / PLAN_FILE, plan.to_json())  # the same bytes `megaspec compile` writes
    started_at, outcome = utc_now(), LaneOutcome()
    launch_error: BaseException | None = None
    try:
        with launcher_signals():  # SIGTERM until torch elastic's handlers (the ranks' start); then restored
            if compiled_for is not None and plan.sha256() != compiled_for:
                raise PlanMismatch(plan.sha256(), compiled_for)
            outside = drills.outside(plan.distributed.world_size)  # a malformed drill is refused, never ignored
            on_event = _also(on_event, drills.launcher_hook(outside, fork_server.server_pid)) if outside else on_event
            seeded = cachestate.restore_seed_dir(plan, cachestate.cache_dir_for(plan, run_dir))
            outcome.staged = data.stage(plan)
            start_method = fork_server.start_fork_server()
            config = launch_config(plan, run_dir, node_rank, master_addr, master_port, start_method)
            with ProgressTail(run_dir, on_event), _quiet_torch_launcher(), fork_server.watched(run_dir):
                elastic_launch(config, fork_server.run_rank)(plan.to_json(), str(run_dir), seeded, started_at)
    except (KeyboardInterrupt, Exception) as exc:  # every ending is triaged into the receipt
        launch_error = fork_server.lost(exc)  # the ranks' parent, not a rank, when it died or stalled
    receipt = complete_receipt(plan, run_dir, started_at, outcome, launch_error, node_rank)
    if node_rank == 0:
        write_receipt(run_dir / RECEIPT_FILE, receipt)
    if isinstance(launch_error, (KeyboardInterrupt, SignalException)):  # SIGINT/SIGTERM reach the agent as the latter
        raise Interrupted(signal_of(launch_error), receipt.error.message) from launch_error  # on Modal: retried
    return receipt.model_dump(mode="json")


# torch's launcher logs each failed worker's whole traceback (36-61 lines) on the terminal; the
# traceback is already in that rank's log and error file, and the receipt names the cause.
QUIET_LOGGERS = ("torch.distributed.elastic", "torch.multiprocessing.spawn")


@contextlib.contextmanager
def _quiet_torch_launcher() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _also(first: EventFn | None, second: EventFn) -> EventFn:
    """Both event handlers, in order (the live display, then a drill's)."""
    def both(event: dict[str, Any]) -> None:
        if first is not None:
            first(event)
        second(event)

    return both


def remove_leftovers(plan: Plan, run_dir: Path) -> None:
    """What a killed attempt left half-written: temp files of atomic writes, unfinished checkpoint saves.
    The launcher alone runs here now (the run folder's claim, one container on Modal)."""
    remove_temp_files(run_dir)
    remove_unfinished(root_for(plan, run_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m megaspec.runtime.launch", description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help=f"{PLAN_FILE} written by `megaspec compile`")
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
    print(f"receipt: {Path(args.run_dir) / RECEIPT_FILE} ({receipt['status']})")
    return 0 if receipt["status"] == "ok" and (not verdict or verdict["passed"]) else 1


if __name__ == "__main__":
    sys.exit(main())
