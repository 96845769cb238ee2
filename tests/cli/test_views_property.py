"""Every value kind in every view: `report` (tables and plots), `receipts compare`, `status` and
`status --json` over one folder that mixes runs of every lane, every state, receipts with and without
numbers, and settings of every type (lists such as `bench.ops`, maps, None, strings, bools, numbers),
in a sweep folder or a plain runs folder. No view may end in an internal error (an exception here:
`catch_exceptions=False`), whatever the mix.

The runs are the files a run leaves (manifest.json, plan.json, receipt.json, progress.jsonl); the plans
are real lowered plans of the three lanes, the numbers and settings are drawn by hypothesis.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.sweep_manifest import SweepManifest, SweepRunEntry, write_sweep
from tests.runtime.conftest import make_plan
from tests.unit.test_manifest import CRASH, make_manifest, make_receipt

PLANS = [make_plan(), make_plan(train={"lr": 1e-2, "seed": 7}), make_plan(lane="bench", bench={"ops": ["all_reduce"]}),
         make_plan(lane="bench", bench={"ops": ["gemm", "all_gather"]}), make_plan(lane="validate"),
         make_plan(tracking={"tensorboard": True}, image={"packages": ["torch==2.8.0", "tensorboard==2.20.0"]})]
NUMBERS = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**12).map(float))
SETTINGS = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 10**9), st.floats(allow_nan=False),
                                  st.text(max_size=6)),
                        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner,
                                                                                               max_size=2)),
                        max_leaves=4)
METRIC_KEYS = ("tokens_per_s", "final_loss", "min_loss", "mfu_pct", "step_time_p50_s", "peak_mem_gib", "wall_time_s")

RUN = st.fixed_dictionaries({
    "plan": st.integers(0, len(PLANS) - 1),
    "state": st.sampled_from(["planned", "running", "ok", "error", "interrupted", "diverged"]),
    "receipt": st.booleans(),
    "metrics": st.dictionaries(st.sampled_from(METRIC_KEYS), NUMBERS, max_size=4),
    "losses": st.lists(NUMBERS.filter(lambda x: x is not None), max_size=5),
    "busbw": NUMBERS,
    "progress": st.booleans(),
    "values": st.dictionaries(st.sampled_from(["train.lr", "bench.ops", "train.seed", "tag", "x"]), SETTINGS,
                              max_size=3),
})


def _json(value):
    """JSON as a file can hold it (NaN and infinities as Python's json writes them)."""
    return json.dumps(value)


def write_run(root: Path, i: int, run: dict) -> Path:
    run_id, plan = f"run-{i}", PLANS[run["plan"]]
    run_dir = root / run_id
    manifest = make_manifest("running", "local").model_copy(update={"run_id": run_id, "lane": plan.lane})
    if run["state"] == "planned":
        manifest = make_manifest("planned", "local").model_copy(update={"run_id": run_id})
    elif run["state"] != "running":
        manifest = mf.advance(manifest, run["state"], receipt="receipt.json" if run["receipt"] else None)
    mf.write_manifest(run_dir, manifest)
    (run_dir / "plan.json").write_text(plan.to_json())
    if run["receipt"] and run["state"] != "planned":
        status = run["state"] if run["state"] in ("ok", "error", "interrupted", "diverged") else "error"
        receipt = {**make_receipt(status, CRASH if status == "error" else None), "run_id": run_id, "name": f"r{i}",
                   "lane": plan.lane, "losses": run["losses"], "metrics": run["metrics"]}
        if status == "diverged":
            receipt["divergence"] = {"step": 3, "loss": 16.0, "first_loss": 5.0, "factor": 3.0, "patience": 3,
                                     "action": "stop"}
        if plan.lane == "bench":
            receipt["bench"] = {"backend": "gloo", "devices": ["cpu"], "torch": None, "nccl": None, "results": [
                {"op": "all_reduce", "dtype": "float32", "time_s": 0.1, "busbw_gbps": run["busbw"]}]}
        (run_dir / "receipt.json").write_text(_json(receipt))
    if run["progress"]:
        (run_dir / "progress.jsonl").write_text("".join(
            _json({"step": s, "loss": v, "losses": [v], "tokens_per_s": 10.0}) + "\n"
            for s, v in enumerate(run["losses"], 1)))
    return run_dir


def write_sweep_file(root: Path, runs: list[dict]) -> None:
    entries, matrix = [], {}
    for i, run in enumerate(runs):
        values = {k: v for k, v in run["values"].items() if isinstance(v, str | int | float | bool)
                  and not (isinstance(v, float) and not math.isfinite(v))}
        for k, v in values.items():
            matrix.setdefault(k, []).append(v)
        entries.append(SweepRunEntry(name=f"s-r{i}", values=values, spec=f"r{i}.yaml", run_id=f"run-{i}",
                                     run_dir=f"run-{i}", state=run["state"]))
    write_sweep(root, SweepManifest(sweep_id=root.name, source="s.yaml", source_sha256=None, matrix=matrix,
                                    target="local", created_at="2026-01-02T03:04:05Z", runs=entries))


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)  # an internal error raises here


def bench_run(plan: int, busbw: float) -> dict:
    return {"plan": plan, "state": "ok", "receipt": True, "metrics": {"final_loss": 2.0}, "losses": [3.0, 2.0],
            "busbw": busbw, "progress": True, "values": {}}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@example(runs=[{**bench_run(0, 1.0), "values": {"bench.ops": ["gemm"], "x": {"a": None}}}, bench_run(2, 1.0),
                bench_run(3, 2.0)], as_sweep=False)  # the case: `bench.ops` (a list) on the plot's x axis
@given(runs=st.lists(RUN, min_size=1, max_size=6), as_sweep=st.booleans())
def test_every_view_shows_any_mix_of_lanes_states_and_value_kinds(runs, as_sweep):
    root = Path(tempfile.mkdtemp(prefix="megaspec-views-")) / "s-20260102-030405-abcd"
    try:
        dirs = [write_run(root, i, run) for i, run in enumerate(runs)]
        if as_sweep:
            write_sweep_file(root, runs)
        for args in (["report", str(root), "-o", str(root.parent / "out")], ["status", str(root)],
                     ["status", "--json", str(root)],
                     ["receipts", "compare", "--force", *(str(d) for d in dirs if (d / "receipt.json").is_file())]):
            result = invoke(*args)
            assert "Traceback" not in result.output and "internal error" not in result.output, (args, result.output)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)
