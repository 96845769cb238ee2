"""Finished runs as records for `compare` and `report`: a receipt, its plan, and the numbers people read.

A run is a run directory (`manifest.json`, `plan.json`, `receipt.json`) or a receipt file with its
`plan.json` beside it. A runs directory or a sweep directory holds runs one level down (a sweep's
order is its manifest's; otherwise run ids sort by launch time). The metrics here are the receipt's
numbers plus what follows from them (tokens processed, cost per million tokens), computed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from megaspec.runtime.contract.rundir import MANIFEST_FILE, PLAN_FILE, RECEIPT_FILE

from .manifest import BackendError

if TYPE_CHECKING:
    from megaspec.runtime.contract.plan import Plan
    from megaspec.runtime.contract.receipt import Receipt


# (key, label, unit): the metrics `compare` and `report` show, in this order.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("tokens_per_s", "tokens/s", ""), ("mfu_pct", "MFU", "%"), ("step_time_p50_s", "step p50", "s"),
    ("step_time_p90_s", "step p90", "s"), ("final_loss", "final loss", ""), ("min_loss", "min loss", ""),
    ("val_loss", "val loss", ""),  # the last evaluation's (`train.eval`)
    ("peak_mem_gib", "peak mem", "GiB"), ("busbw_gbps", "bus bw", "GB/s"), ("cost_usd", "cost", "$"),
    ("est_cost_usd", "est. cost", "$"), ("usd_per_mtok", "$/Mtok", "$"), ("wall_time_s", "wall", "s"),
)


def metric_heading(key: str) -> str:
    """A metric's column heading with its unit (`step p50 (s)`, `peak mem (GiB)`); `$` is in the values.
    The one heading of every table (`report`, `summary.md`, `compare`) and plot axis."""
    label, unit = next((label, unit) for k, label, unit in METRICS if k == key)
    return f"{label} ({unit})" if unit not in ("", "$") else label


@dataclass(frozen=True)
class RunRecord:
    path: Path  # the run directory
    receipt: Receipt
    plan: Plan

    @property
    def name(self) -> str:
        return self.receipt.name


def load_run(path: str | Path) -> RunRecord:
    """One run from its directory or its receipt file; BackendError says what is missing."""
    from megaspec.runtime.contract.plan import read_plan
    from megaspec.runtime.contract.receipt import read_receipt

    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    receipt_path = path / RECEIPT_FILE if path.is_dir() else path
    if not receipt_path.is_file():
        raise BackendError(f"`{path}` has no receipt", hint=f"Pass a finished run; for a Modal run, "
                                                             f"`megaspec collect {run_dir}` fetches it")
    if not (run_dir / PLAN_FILE).is_file():
        raise BackendError(f"`{run_dir}` has no {PLAN_FILE} beside the receipt",
                           hint="Pass the run directory megaspec wrote (runs/<run-id>)")
    try:
        return RunRecord(run_dir, read_receipt(receipt_path), read_plan(run_dir / PLAN_FILE))
    except (ValueError, OSError) as e:
        raise BackendError(f"cannot read `{run_dir}`: {str(e).splitlines()[0]}",
                           hint="It was written by another megaspec version, or edited by hand") from e


def run_dirs(root: str | Path) -> list[Path]:
    """The run directories under a runs or sweep directory (a run directory is itself)."""
    from .sweep_manifest import SWEEP_FILE, read_sweep

    root = Path(root)
    if (root / MANIFEST_FILE).is_file():
        return [root]
    if (root / SWEEP_FILE).is_file():
        return [root / run.run_dir for run in read_sweep(root).runs]
    return sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))


def tokens_processed(r: RunRecord) -> int | None:
    if r.receipt.steps is None:
        return None
    return r.receipt.steps.completed * r.plan.train.tokens_per_step


def metric_values(r: RunRecord) -> dict[str, float | None]:
    """Every key of METRICS for one run (None where the run has no such number)."""
    m, c = r.receipt.metrics, r.receipt.cost
    values: dict[str, float | None] = {key: getattr(m, key, None) if m else None for key, _, _ in METRICS}
    bench = r.receipt.bench
    busbw = [x.busbw_gbps for x in bench.results if x.busbw_gbps is not None] if bench else []
    values["busbw_gbps"] = max(busbw) if busbw else None
    values["cost_usd"] = c.usd if c else None
    values["est_cost_usd"] = c.est_usd if c else None
    tokens = tokens_processed(r)
    values["usd_per_mtok"] = c.usd / (tokens / 1e6) if c and c.usd is not None and tokens else None
    curve = val_curve(r)
    values["val_loss"] = curve[-1][1] if curve else None
    return values


def loss_curve(r: RunRecord) -> list[tuple[int, float]]:
    """(step, loss) of every step, from the run's per-step record `progress.jsonl`, else the receipt's losses."""
    from megaspec.runtime.contract.progress import read_record

    return list(enumerate(read_record(r.path).losses or r.receipt.losses, 1))


def val_curve(r: RunRecord) -> list[tuple[int, float]]:
    """(step, validation loss) of every evaluation (`train.eval`): the receipt's, else `progress.jsonl`'s."""
    from megaspec.runtime.contract.progress import read_record

    if r.receipt.eval:
        return [(e.step, e.loss) for e in r.receipt.eval]
    if r.plan.train.eval is None:
        return []
    return [(e["step"], e["loss"]) for e in read_record(r.path).evals]


def metric_text(key: str, value: float | None) -> str:
    """A metric for a table cell: dollars with cents, throughput with separators, losses with 4 decimals."""
    if value is None:
        return "-"
    if key in ("cost_usd", "est_cost_usd"):
        return f"${value:,.2f}"
    if key == "usd_per_mtok":
        return f"${value:,.4f}"
    if key in ("tokens_per_s", "busbw_gbps"):
        return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"
    if key in ("final_loss", "min_loss", "val_loss"):
        return f"{value:.4f}"
    if key in ("step_time_p50_s", "step_time_p90_s"):
        return f"{value:.4f}"
    return f"{value:,.2f}"


def provenance_values(r: RunRecord) -> dict[str, str]:
    """What produced the numbers: versions, git revision, image, observed GPU, and the run it repeats."""
    p, h = r.receipt.provenance, r.receipt.hardware
    git = f"{p.git_sha[:12]}{' (dirty)' if p.git_dirty else ''}" if p.git_sha else "unknown"
    devices = sorted(set(h.observed_devices))
    return {"megaspec": p.megaspec or "-", "torch": p.torch or "-", "modal": p.modal or "-", "python": p.python,
            "git": git, "image": (p.image_sha256 or "-")[:12], "observed": ", ".join(devices) or "-",
            "host": p.host, "rerun of": r.receipt.rerun_of or "-"}
