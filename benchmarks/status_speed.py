"""`megaspec status` over 200 detached Modal runs, against Modal's own test server (../shared/modal-mock).

The real client spawns 200 calls (one app, detached), each recorded in its own run directory as
apply leaves it; then `megaspec status DIR` runs in a fresh process (one immediate poll per run,
`refresh.MAX_POLLS` in flight), interleaved with the same command polling serially (MAX_POLLS = 1).

`--volume`: the spec's run folder on a checkpoints Volume, with a 30-step progress.jsonl there (all
runs share the first's plan, so one file): each poll also copies it into its run folder.

Goal: under 5 s. Run: `python benchmarks/status_speed.py [--num-runs 200] [--repeats 3] [--volume]`.

`--local 1000`: `megaspec status DIR` over 1,000 local run folders instead (no server): 900 ok, 90
running (held by this process, so not orphans, each with a 200-step progress.jsonl that status reads
for its step, loss, tokens/s and ETA) and 10 queued. Goal: under 3 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MOCK_SERVER = REPO_ROOT.parent / "shared" / "modal-mock" / "server.py"
SPEC = REPO_ROOT / "specs" / "cpu-local.yaml"
WITH_VOLUME = "volumes: {checkpoints: {name: ms-bench-progress, mount: /vol/ckpt}}\n"
STATUS = "from megaspec.compiler.runs import refresh; refresh.MAX_POLLS = {polls}; " \
         "from megaspec.compiler.cli import main; main()"


def start_server(ctrl: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(MOCK_SERVER), "--ctrl", str(ctrl)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (ctrl / "port").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the mock server did not start (see {MOCK_SERVER})")
        time.sleep(0.05)
    return proc


def make_runs(runs_dir: Path, num_runs: int, spec: Path) -> Path:
    """One real apply, then `num_runs` spawned calls of its app, each in a run directory like apply's;
    the first run's directory."""
    from megaspec.compiler.runs import manifest as mf
    from megaspec.compiler.runs.backends.modal import find_entrypoint, load_app_module

    build = runs_dir.parent / "build"
    subprocess.run([sys.executable, "-c", "from megaspec.compiler.cli import main; main()", "apply", str(spec), "--target", "modal",
                    "--runs-dir", str(runs_dir / "seed"), "--build-dir", str(build)], check=True,
                   capture_output=True)
    seed = next((runs_dir / "seed").glob("*/manifest.json")).parent
    app, function = find_entrypoint(load_app_module(next(build.glob("*/app.py"))))
    plan_json = (seed / "plan.json").read_text()
    with app.run(detach=True):
        calls = [function.spawn(plan_json) for _ in range(num_runs)]
    template = mf.read_manifest(seed)
    for i, call in enumerate(calls):
        run_dir = runs_dir / "all" / f"{template.run_id}-{i:04d}"
        run_dir.mkdir(parents=True)
        (run_dir / "plan.json").write_text(plan_json)
        mf.write_manifest(run_dir, template.model_copy(update={
            "run_id": run_dir.name, "modal": template.modal.model_copy(update={"function_call_id": call.object_id})}))
    return seed


def put_progress(seed: Path) -> None:
    """What a container 30 steps in would have committed to the Volume, where every run looks for it."""
    import io
    import json

    import modal

    from megaspec.compiler.runs.backends.modal_volume import volume_path

    from megaspec.runtime.contract.clock import utc_now

    volume, path = volume_path(seed, "progress.jsonl")
    now = utc_now()  # after the launch: a step written before it would be an earlier attempt's, not shown
    progress = "".join(json.dumps({"step": s, "loss": 5.0, "losses": [5.0], "tokens_per_s": 3000.0, "eta_s": 9.0,
                                   "at": now}) + "\n" for s in range(1, 31))
    with modal.Volume.from_name(volume, create_if_missing=True).batch_upload(force=True) as batch:
        batch.put_file(io.BytesIO(progress.encode()), path)


def timed_status(runs: Path, polls: int, shown: str = " detached ") -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", STATUS.format(polls=polls), "status", str(runs)],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    rows = done.stdout.splitlines()[1:-1]  # the header and the count line are no runs
    if done.returncode != 0 or not all(" detached " in r and shown in r for r in rows):
        sys.exit(f"status failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def make_local_runs(runs: Path, num_runs: int) -> None:
    """`num_runs` local run folders: 90% ok, 9% running with progress, 1% planned."""
    import json

    sys.path.insert(0, str(REPO_ROOT))
    from megaspec.compiler.runs import manifest as mf
    from megaspec.compiler.runs.local_process import this_process
    from tests.runtime.conftest import make_plan

    plan = make_plan(steps=400, plan={"run": {"run_id": "run"}})
    base = mf.new_manifest(plan, backend="local", now="2026-01-02T03:00:00Z")
    progress = "".join(json.dumps({"step": s, "loss": 5.0, "losses": [5.0], "tokens_per_s": 3000.0, "eta_s": 9.0})
                       + "\n" for s in range(1, 201))
    for i in range(num_runs):
        run_dir = runs / f"run-{i:04d}"
        at = f"2026-01-02T03:{i // 60 % 60:02d}:{i % 60:02d}Z"
        manifest = base.model_copy(update={"run_id": run_dir.name})
        if i % 100 != 99:
            manifest = mf.advance(manifest, "running", now=at, process=this_process())
        if i % 10 != 9 and i % 100 != 99:
            manifest = mf.advance(manifest, "ok", now=at, receipt="receipt.json")
        mf.write_manifest(run_dir, manifest)
        (run_dir / "plan.json").write_text(plan.to_json())
        if manifest.state == "running":
            (run_dir / "progress.jsonl").write_text(progress)


def local_status(num_runs: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        make_local_runs(runs, num_runs)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", "from megaspec.compiler.cli import main; main()", "status",
                                   str(runs)], capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0 or "/400" not in done.stdout:
                sys.exit(f"status failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    median = statistics.median(times)
    print(f"status over {num_runs:,} local runs ({done.stdout.splitlines()[-1]}), fresh process: median "
          f"{median:.2f} s {[round(x, 2) for x in times]} (load {os.getloadavg()[0]:.1f}); goal under 3 s -> "
          f"{'met' if median < 3 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-runs", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--local", type=int, default=None, metavar="N", help="N local runs instead of Modal ones")
    ap.add_argument("--volume", action="store_true", help="each run's progress read from its Volume too")
    args = ap.parse_args()
    if args.local:
        local_status(args.local, args.repeats)
        return
    if not MOCK_SERVER.is_file():
        sys.exit(f"needs Modal's test server at {MOCK_SERVER}")
    with tempfile.TemporaryDirectory() as tmp:
        ctrl, home = Path(tmp) / "ctrl", Path(tmp) / "home"
        home.mkdir()
        server = start_server(ctrl)
        os.environ.update({"MODAL_SERVER_URL": f"http://127.0.0.1:{(ctrl / 'port').read_text()}", "HOME": str(home),
                           "MODAL_TOKEN_ID": "ak-mock", "MODAL_TOKEN_SECRET": "as-mock"})
        try:
            spec = SPEC
            if args.volume:
                spec = Path(tmp) / "spec.yaml"
                spec.write_text(SPEC.read_text() + WITH_VOLUME)
            seed = make_runs(Path(tmp) / "runs", args.num_runs, spec)
            if args.volume:
                put_progress(seed)
            shown = " 30/40 " if args.volume else " detached "
            runs = Path(tmp) / "runs" / "all"
            one = next(runs.iterdir())
            parallel, serial, floor = [], [], []
            for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all alike
                parallel.append(timed_status(runs, polls=16, shown=shown))
                serial.append(timed_status(runs, polls=1, shown=shown))
                floor.append(timed_status(one, polls=1, shown=shown))
        finally:
            server.terminate()
            server.wait()
    p, s, f = statistics.median(parallel), statistics.median(serial), statistics.median(floor)
    print(f"status over {args.num_runs} detached runs (fresh process, one poll each):")
    print(f"  16 polls in flight: median {p:.2f} s  {[round(x, 2) for x in parallel]}")
    print(f"  serial polls:       median {s:.2f} s  {[round(x, 2) for x in serial]}")
    print(f"  one run (start-up, connect, one poll): median {f:.2f} s; per extra run: parallel "
          f"{(p - f) / (args.num_runs - 1) * 1000:.1f} ms, serial {(s - f) / (args.num_runs - 1) * 1000:.1f} ms")
    print(f"  ratio parallel/serial: {p / s:.2f}   goal: under 5 s -> {'met' if p < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
