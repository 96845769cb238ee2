"""A detached Modal run's progress and receipt, read from its results Volume through the real `modal`
client and Modal's own test server.

Nothing runs in a container here: each test puts on the Volume what a running container's commit
would have left there (`put_on_volume`, the bytes written by the runtime's own ProgressLog), at
`<runs folder under the mount>/<run id>/progress.jsonl`, then drives `status`, `collect` and `report`
as a user would. The receipt of a call whose result Modal no longer keeps is read from the same
Volume (`collect` after the retention window).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.backends import modal_collect
from megaspec.runtime.contract.clock import FORMAT, parse_utc
from megaspec.runtime.contract.files import READ_CAPS
from megaspec.runtime.contract.progress import ProgressLog, read_record
from tests.conftest import REPO_ROOT
from tests.modal.conftest import put_on_volume
from tests.modal.test_lifecycle import invoke, receipt_for

LONG_AGO = "2026-01-02T03:04:05.000000Z"  # past Modal's result retention: its "expired" is believed
RUN_ID = "dense-125m-h100-smoke-20260102-030405-abcd"


def expired_run(run_dir, spec: str = "specs/h100-smoke.yaml"):
    """A detached run whose call the server no longer knows (expired), with the plan of `spec`."""
    from megaspec.compiler.codegen.build import origins_of
    from megaspec.compiler.codegen.lower import lower
    from megaspec.compiler.lint.check import check_spec

    checked = check_spec(spec)
    plan = lower(checked.spec, spec_path=spec, spec_sha256="a" * 64, origins=origins_of(checked),
                 run_id=RUN_ID)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "plan.json").write_text(plan.to_json())
    m = mf.advance(mf.new_manifest(plan, backend="modal", now=LONG_AGO), "running",
                   modal=mf.ModalCall(function_call_id="fc-expired", app_id="ap-1"))
    mf.write_manifest(run_dir, m)
    return run_dir


def test_a_cancelled_run_keeps_the_progress_it_committed(running, tmp_path):
    committed = progress_bytes(tmp_path, 12)
    put_on_volume(VOLUME, on_volume(running), committed)
    result = invoke("cancel", str(running))
    assert result.exit_code == 0 and "note:" not in result.stderr, result.output
    assert mf.read_manifest(running).state == "interrupted" and (running / "progress.jsonl").read_bytes() == committed


def test_a_cancelled_run_without_progress_says_so(running, tmp_path):
    result = invoke("cancel", str(running))
    assert result.exit_code == 0 and mf.read_manifest(running).state == "interrupted"
    assert f"note: the run left no progress on Volume `{VOLUME}` (`{on_volume(running)}`)" in result.stderr


def test_expired_result_is_read_from_the_runs_volume(mock, tmp_path):
    run_dir = expired_run(tmp_path / "run")
    put_on_volume("ms-ckpt", f"megaspec-runs/{RUN_ID}/receipt.json", json.dumps(receipt_for(run_dir)).encode())
    m = modal_collect.collect(run_dir)
    assert m.state == "ok" and "Volume `ms-ckpt`" in m.notes[0] and "7 days" in m.notes[0]


def test_expired_result_on_an_unreadable_volume_says_how_to_fetch_it(mock, tmp_path):
    run_dir = expired_run(tmp_path / "run")
    put_on_volume("ms-ckpt", f"megaspec-runs/{RUN_ID}/receipt.json", json.dumps(receipt_for(run_dir)).encode())
    mock.set("rpc_status.json", json.dumps({"VolumeGetFile2": ["PERMISSION_DENIED", "offline"]}))  # there, unread
    m = modal_collect.collect(run_dir)
    assert m.state == "running" and m.error is None
    assert "reading it failed (PermissionDeniedError: offline)" in m.notes[0], m.notes[0]
    assert (f"run `modal volume get ms-ckpt megaspec-runs/{RUN_ID}/receipt.json "
            f"{run_dir / 'receipt.json'}`") in m.notes[0]


VOLUME = "ms-progress"
CPU_ON_MODAL = (REPO_ROOT / "specs" / "cpu-local.yaml").read_text().replace("target: local", "target: modal")
WITH_VOLUME = CPU_ON_MODAL + f"volumes: {{checkpoints: {{name: {VOLUME}, mount: /vol/ckpt}}}}\n"


def apply_detached(tmp_path: Path, spec_text: str = WITH_VOLUME) -> Path:
    """A run launched through the server, left detached: its run folder here."""
    (tmp_path / "s.yaml").write_text(spec_text)
    result = invoke("apply", str(tmp_path / "s.yaml"), "--target", "modal", "--runs-dir", str(tmp_path / "runs"),
                    "--build-dir", str(tmp_path / "build"))
    assert result.exit_code == 0, result.output
    return next((tmp_path / "runs").glob("*/manifest.json")).parent


def on_volume(run_dir: Path) -> str:
    """Where the container writes the run's progress: the run folder under `megaspec-runs/` of the mount."""
    return f"megaspec-runs/{run_dir.name}/progress.jsonl"


def progress_bytes(tmp_path: Path, steps: int) -> bytes:
    """progress.jsonl as the runtime writes it after `steps` logged steps of 40 (1 s and 3,282 tokens each)."""
    scratch = tmp_path / f"container-{steps}"
    scratch.mkdir()
    log = ProgressLog(scratch, total_steps=40, enabled=True)
    for step in range(1, steps + 1):
        log.emit(step, [6.0 - step / 10], lr=3e-3, grad_norm=1.0, step_s=1.0, tokens_per_step=3282)
    return (scratch / "progress.jsonl").read_bytes()


def pin_clock(monkeypatch, data: bytes, after_s: float) -> None:
    """`status`'s now: `after_s` after the last event was written."""
    from megaspec.compiler.runs import status_view

    written = parse_utc(json.loads(data.splitlines()[-1])["at"])
    monkeypatch.setattr(status_view, "utc_now", lambda: (written + timedelta(seconds=after_s)).strftime(FORMAT))


def row_of(output: str, run_dir: Path) -> list[str]:
    """The cells of the run's row (LAUNCHED is two: date and time)."""
    return next(line for line in output.splitlines() if line.startswith(run_dir.name)).split(maxsplit=11)


@pytest.fixture
def running(mock, tmp_path):
    """A detached run whose call graph names a container: `running`."""
    run_dir = apply_detached(tmp_path)
    mock.set("task_id", "ta-01CONTAINER")
    return run_dir


def test_status_shows_step_loss_throughput_and_eta_from_the_volume(running, tmp_path, monkeypatch):
    data = progress_bytes(tmp_path, 12)
    put_on_volume(VOLUME, on_volume(running), data)
    pin_clock(monkeypatch, data, 8)  # the ETA counts down from the event's own time, not the copy's
    result = invoke("status", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    row = row_of(result.stdout, running)
    assert row[1] == "running" and row[6:9] == ["12/40", "4.8000", "3,282"] and row[10] == "0:20", row
    assert (running / "progress.jsonl").read_bytes() == data  # the copy `report` reads too
    shown = json.loads(invoke("status", "--json", str(tmp_path / "runs")).stdout)[0]
    assert (shown["step"], shown["planned_steps"], shown["loss"], shown["tokens_per_s"], shown["eta_s"]) == \
           (12, 40, 4.8, 3282.0, 20.0)
    assert shown["progress_problem"] is None


def test_a_later_commit_shows_the_later_step(running, tmp_path):
    put_on_volume(VOLUME, on_volume(running), progress_bytes(tmp_path, 12))
    assert row_of(invoke("status", str(tmp_path / "runs")).stdout, running)[6] == "12/40"
    put_on_volume(VOLUME, on_volume(running), progress_bytes(tmp_path, 30))
    assert row_of(invoke("status", str(tmp_path / "runs")).stdout, running)[6] == "30/40"


def test_status_watch_follows_the_commits_until_the_run_ends(running, tmp_path, monkeypatch, mock):
    from types import SimpleNamespace

    from megaspec.compiler.commands import runs as commands

    put_on_volume(VOLUME, on_volume(running), progress_bytes(tmp_path, 12))
    final = progress_bytes(tmp_path, 40)

    def between_refreshes(seconds: float) -> None:  # what the container does while `--watch` waits
        put_on_volume(VOLUME, on_volume(running), final)
        mock.set("result.json", json.dumps(receipt_for(running)))

    monkeypatch.setattr(commands, "time", SimpleNamespace(sleep=between_refreshes))
    result = invoke("status", "--watch", str(tmp_path / "runs"))
    first, last = result.stdout.split("1 run(s): 1 running")
    assert result.exit_code == 0 and row_of(first, running)[6] == "12/40"
    assert row_of(last, running)[1] == "ok" and last.rstrip().endswith("1 run(s): 1 ok")
    assert (running / "progress.jsonl").read_bytes() == final


def test_a_sweep_status_that_launches_a_queued_run_keeps_what_the_polls_found(mock, tmp_path, monkeypatch):
    """`status SWEEP_DIR` reads the runs again after launching into a freed slot: a poll's findings stay."""
    from megaspec.compiler.runs.sweep_manifest import read_sweep
    from tests.modal.test_sweep_modal import TEMPLATE

    monkeypatch.chdir(tmp_path)  # the project: a queued run's app is rendered again only inside it
    (tmp_path / "t.yaml").write_text(TEMPLATE + f"volumes: {{checkpoints: {{name: {VOLUME}, mount: /vol/ckpt}}}}\n")
    applied = invoke("apply", "t.yaml", "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"), "--yes")
    assert applied.exit_code == 0, applied.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    first, second, third = (sweep_dir / r.run_dir for r in read_sweep(sweep_dir).runs)
    mock.set("finished_calls.txt", mf.read_manifest(first).modal.function_call_id)
    mock.set("result.json", json.dumps(receipt_for(first)))
    mock.set("task_id", "ta-01CONTAINER")
    result = invoke("status", str(sweep_dir))
    assert [row_of(result.stdout, d)[1] for d in (first, second, third)] == ["ok", "running", "detached"]
    assert f"no progress on Volume `{VOLUME}` yet" in row_of(result.stdout, second)[11], result.stdout


def test_no_progress_on_the_volume_yet_is_said_and_changes_nothing(running, tmp_path):
    put_on_volume(VOLUME, "elsewhere/file", b"the Volume exists; this run committed nothing yet")
    result = invoke("status", str(tmp_path / "runs"))
    row = row_of(result.stdout, running)
    assert result.exit_code == 0 and row[1] == "running" and row[6:9] == ["-", "-", "-"], result.stdout
    said = f"no progress on Volume `{VOLUME}` yet (a running container commits every few seconds)"
    assert row[11].endswith(f"container ta-01CONTAINER; {said}")
    shown = json.loads(invoke("status", "--json", str(tmp_path / "runs")).stdout)[0]
    assert shown["progress_problem"] == said and shown["step"] is None and shown["manifest"]["state"] == "running"
    assert not (running / "progress.jsonl").exists()


@pytest.mark.parametrize("trouble", ["Volume deleted", "read refused"])
def test_a_volume_gone_or_refusing_is_said_and_changes_nothing(mock, tmp_path, trouble):
    import modal

    run_dir = apply_detached(tmp_path, WITH_VOLUME.replace(VOLUME, "ms-progress-trouble"))
    mock.set("task_id", "ta-01CONTAINER")
    if trouble == "Volume deleted":
        modal.Volume.objects.delete("ms-progress-trouble")
        said = "progress not read from Volume `ms-progress-trouble`: NotFoundError: "
    else:
        mock.set("rpc_status.json", json.dumps({"VolumeGetFile2": ["PERMISSION_DENIED", "not yours"]}))
        said = "progress not read from Volume `ms-progress-trouble`: PermissionDeniedError: not yours"
    result = invoke("status", str(tmp_path / "runs"))
    row = row_of(result.stdout, run_dir)
    assert result.exit_code == 0 and row[1] == "running" and row[6] == "-" and said in row[11], result.stdout
    assert json.loads(invoke("status", "--json", str(tmp_path / "runs")).stdout)[0]["progress_problem"].startswith(said)


def test_a_run_without_a_volume_says_its_progress_is_only_in_the_container(mock, tmp_path):
    run_dir = apply_detached(tmp_path, CPU_ON_MODAL)
    result = invoke("status", str(tmp_path / "runs"))
    assert result.exit_code == 0 and row_of(result.stdout, run_dir)[6] == "-"
    assert "progress is only in the container: the run folder is on no Volume" in result.stdout


def test_a_hostile_progress_file_shows_only_its_events(running, tmp_path):
    good = progress_bytes(tmp_path, 12).splitlines()
    garbage = [b"\x1b[2J\x1b]0;owned\x07", b"\xff\xfe not utf-8", b"[" * 100_000, b'{"step": "\\u001b[31m"}',
               b'{"step": 13, "loss": 1.0, "at": "\\u001b[31m 2026"}', b'{"step": 14, "loss": "1.0"}',
               b'{"step": 15, "at": "2026-01-02T03:04:05"}']  # a time without its zone is no time
    put_on_volume(VOLUME, on_volume(running), b"\n".join([*good, *garbage, b'{"step": 16, "lo']))
    result = invoke("status", str(tmp_path / "runs"))
    assert result.exit_code == 0 and "\x1b" not in result.output and "\x07" not in result.output
    assert row_of(result.stdout, running)[6] == "12/40"


def test_a_progress_file_over_the_cap_is_not_copied_and_is_said(running, tmp_path):
    put_on_volume(VOLUME, on_volume(running), progress_bytes(tmp_path, 12))
    invoke("status", str(tmp_path / "runs"))
    cap = READ_CAPS["progress"]
    put_on_volume(VOLUME, on_volume(running), b"\n" * (cap + 1))
    result = invoke("status", str(tmp_path / "runs"))
    row = row_of(result.stdout, running)
    assert result.exit_code == 0 and row[1] == "running" and row[6] == "12/40"  # the copy already here stays
    assert f"progress not copied: the progress on Volume `{VOLUME}` is over {cap:,} bytes" in row[11]


def test_the_copy_is_never_written_through_a_link(running, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not megaspec's")
    (running / "progress.jsonl").symlink_to(outside)
    put_on_volume(VOLUME, on_volume(running), progress_bytes(tmp_path, 12))
    result = invoke("status", str(tmp_path / "runs"))
    row = row_of(result.stdout, running)
    assert result.exit_code == 0 and row[1] == "running" and row[6] == "-", result.stdout
    assert f"progress not copied to `{running / 'progress.jsonl'}`" in row[11]
    assert outside.read_bytes() == b"not megaspec's" and (running / "progress.jsonl").is_symlink()


def test_a_volume_that_does_not_answer_leaves_the_poll_within_its_bound(own_mock, tmp_path, monkeypatch):
    from megaspec.compiler.runs import refresh

    run_dir = apply_detached(tmp_path)
    own_mock.set("task_id", "ta-01CONTAINER")
    own_mock.set("rpc_hang.txt", "VolumeGetFile2")
    monkeypatch.setattr(refresh, "POLL_TIMEOUT_S", 5.0)
    result = invoke("status", str(tmp_path / "runs"))
    row = row_of(result.stdout, run_dir)
    assert result.exit_code == 0 and row[1] == "running", result.stdout  # the poll's answer is kept
    assert row[11].endswith("progress not read: its Volume did not answer within 5 s")


def test_the_poll_that_sees_the_run_end_copies_its_whole_progress(running, tmp_path, mock):
    put_on_volume(VOLUME, on_volume(running), progress_bytes(tmp_path, 12))
    invoke("status", str(tmp_path / "runs"))
    final = progress_bytes(tmp_path, 40)
    put_on_volume(VOLUME, on_volume(running), final)
    mock.set("result.json", json.dumps(receipt_for(running)))
    assert invoke("collect", str(running)).exit_code == 0
    assert mf.read_manifest(running).state == "ok" and (running / "progress.jsonl").read_bytes() == final
    assert len(read_record(running).losses) == 40  # `report`'s loss curve: every step
    report = invoke("report", str(tmp_path / "runs"), "-o", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output


