"""`megaspec status` shows progress: a running local run's step / planned steps, last loss, tokens/s,
elapsed and ETA from its progress.jsonl; a count per state; runs by launch time (the first move out of
`planned`), queued ones last; `--json` with the same fields; exit 1 when a run ended in error.

The runs are the files a run leaves; the running one is held by this test's own process (alive, so it
is not an orphan), as a launcher holds its run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.local_process import this_process
from tests.runtime.conftest import make_plan
from tests.unit.test_manifest import CRASH, make_manifest

T0 = "2026-01-02T03:04:05Z"


def write(root: Path, run_id: str, manifest: mf.Manifest, events: list[dict] | None = None) -> Path:
    run_dir = root / run_id
    mf.write_manifest(run_dir, manifest.model_copy(update={"run_id": run_id}))
    (run_dir / "plan.json").write_text(make_plan(steps=40).to_json())
    if events is not None:
        (run_dir / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


def runs(root: Path, *, failed: bool = False) -> None:
    planned_first = make_manifest("planned").model_copy(update={"transitions": [mf.Transition(state="planned",
                                                                                              at="2026-01-02T03:00:00Z")]})
    write(root, "queued", planned_first)  # planned before the others launched: still listed after them
    running = mf.advance(make_manifest("planned"), "running", now="2026-01-02T03:10:00Z", process=this_process())
    write(root, "going", running, [{"step": s, "loss": 6.0 - s / 10, "losses": [6.0 - s / 10],
                                    "tokens_per_s": 3282.0, "eta_s": 28.0} for s in range(1, 13)])
    done = mf.advance(mf.advance(make_manifest("planned"), "running", now="2026-01-02T03:05:00Z"), "ok",
                      now="2026-01-02T03:06:40Z", receipt="receipt.json")
    write(root, "done", done)
    if failed:
        broken = mf.advance(mf.advance(make_manifest("planned"), "running", now="2026-01-02T03:07:00Z"), "error",
                            error=mf.ManifestError(stage="remote", message=CRASH["message"]))
        write(root, "broken", broken)


def status(*args: str):
    return CliRunner().invoke(cli, ["status", *args], catch_exceptions=False)


def test_a_running_run_shows_step_loss_throughput_elapsed_and_eta_and_runs_are_in_launch_order(tmp_path):
    runs(tmp_path)
    result = status(str(tmp_path))
    assert result.exit_code == 0, result.output
    header, *rows, counts = result.stdout.splitlines()
    assert [r.split()[0] for r in rows] == ["done", "going", "queued"]  # launch order; queued last
    done, going, queued = (r.split() for r in rows)
    assert going[1] == "running" and going[5:9] == ["03:10:00", "12/40", "4.8000", "3,282"]
    assert done[5:7] == ["03:05:00", "-"] and done[9] == "1:40"  # launched, not planned; ran 100 s
    assert queued[4:6] == ["-", "-"]
    assert counts == "3 run(s): 1 running, 1 planned, 1 ok"


def test_json_has_the_same_fields(tmp_path, monkeypatch):
    runs(tmp_path)
    # The clock pinned: 'now' is 03:20:00 and the last step event was written 8 s before it.
    from datetime import UTC, datetime

    from megaspec.compiler.runs import status_view

    monkeypatch.setattr(status_view, "utc_now", lambda: "2026-01-02T03:20:00Z")
    written = datetime(2026, 1, 2, 3, 19, 52, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "going" / "progress.jsonl", (written, written))
    data = {d["manifest"]["run_id"]: d for d in json.loads(status("--json", str(tmp_path)).stdout)}
    going = data["going"]
    assert (going["step"], going["planned_steps"], going["loss"], going["tokens_per_s"]) == (12, 40, 4.8, 3282.0)
    assert (going["launched_at"], going["elapsed_s"], going["eta_s"]) == ("2026-01-02T03:10:00Z", 600.0, 20.0)
    assert data["queued"]["launched_at"] is None and data["done"]["elapsed_s"] == 100.0


def test_status_exits_1_when_a_run_ended_in_error(tmp_path):
    runs(tmp_path, failed=True)
    result = status(str(tmp_path))
    assert result.exit_code == 1 and "1 error" in result.stdout.splitlines()[-1]
    assert status("--json", str(tmp_path)).exit_code == 1


def test_the_eta_counts_from_the_time_the_step_was_written_not_the_files(tmp_path, monkeypatch):
    """A copy of progress.jsonl (a Modal run's, from its Volume) is newer than its events: its `at` decides."""
    from datetime import UTC, datetime

    from megaspec.compiler.runs import status_view

    runs(tmp_path)
    events = [{"step": 12, "loss": 4.8, "tokens_per_s": 3282.0, "eta_s": 28.0, "at": "2026-01-02T03:19:40.000000Z"}]
    (tmp_path / "going" / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    monkeypatch.setattr(status_view, "utc_now", lambda: "2026-01-02T03:20:00Z")
    copied = datetime(2026, 1, 2, 3, 19, 59, tzinfo=UTC).timestamp()
    os.utime(tmp_path / "going" / "progress.jsonl", (copied, copied))
    data = {d["manifest"]["run_id"]: d for d in json.loads(status("--json", str(tmp_path)).stdout)}
    assert data["going"]["eta_s"] == 8.0  # 28 s left 20 s ago; the file's time (1 s ago) would say 27


def test_a_step_written_before_the_run_was_launched_is_an_earlier_attempts(tmp_path):
    """A run launched again in its folder: until its container moves the old progress.jsonl aside on the
    Volume, the copy here is the earlier attempt's, and shows no step for this one."""
    runs(tmp_path)
    events = [{"step": 12, "loss": 4.8, "tokens_per_s": 3282.0, "eta_s": 28.0, "at": "2026-01-02T03:09:59.000000Z"}]
    (tmp_path / "going" / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    data = {d["manifest"]["run_id"]: d for d in json.loads(status("--json", str(tmp_path)).stdout)}
    assert data["going"]["step"] is None and data["going"]["launched_at"] == "2026-01-02T03:10:00Z"
    events[0]["at"] = "2026-01-02T03:10:01.000000Z"
    (tmp_path / "going" / "progress.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    data = {d["manifest"]["run_id"]: d for d in json.loads(status("--json", str(tmp_path)).stdout)}
    assert data["going"]["step"] == 12
