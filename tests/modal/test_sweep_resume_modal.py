"""`megaspec apply SWEEP_DIR` of a Modal sweep, through the real client and Modal's own test server: its
`interrupted` runs (and `error` ones with `--retry-failed`) are launched again in their own run folders
(same run id, name and plan: the container continues from the checkpoints on its Volume), their earlier
attempt (manifest with its Modal call) kept in `attempts/<n>/`; an `ok` run never; `max_parallel` holds.

Each run is ended its own way by steering the server per call (`finished_calls.txt`: only the named call
finishes): run 1 returns its receipt, run 2 is cancelled (`interrupted`), run 3 fails (`error`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.sweep_manifest import read_sweep
from megaspec.runtime.contract.plan import read_plan
from tests.modal.test_lifecycle import receipt_for
from tests.modal.test_sweep_modal import invoke
from tests.test_modal_local_call import restored_environ  # noqa: F401 - fixture

TEMPLATE = """megaspec: 1
name: again
lane: train
target: modal
resources: {ranks: 1}
preset: tiny
train: {steps: 4, warmup_steps: 1, global_batch: 2, micro_batch: 2, seq_len: 32, precision: fp32, compile: false}
data: {source: synthetic}
volumes:
  checkpoints: {name: again-ckpt, mount: /vol/ckpt}
checkpoint: {every: 2, resume: auto}
sweep:
  matrix:
    train.seed: [1, 2, 3]
  max_parallel: 1
"""


def _calls(mock) -> list[str]:
    return list(mock.state()["function_calls"])


def _run_dirs(sweep_dir: Path) -> list[Path]:
    return [sweep_dir / r.run_dir for r in read_sweep(sweep_dir).runs]


def _states(sweep_dir: Path) -> list[str]:
    """Each run's state from its own manifest (sweep.json catches up when a command reads the sweep)."""
    return [mf.read_manifest(d).state for d in _run_dirs(sweep_dir)]


def _finish(mock, run_dir: Path, **control: str) -> None:
    """Only `run_dir`'s current call finishes, as `control` says (a result, or an error)."""
    mock.clear()
    mock.set("finished_calls.txt", mf.read_manifest(run_dir).modal.function_call_id)
    for name, text in control.items():
        mock.set(name, text)


def ended_sweep(mock, tmp_path: Path) -> Path:
    """A 3-run sweep (max_parallel 1) whose run 1 ended ok, run 2 interrupted (cancelled), run 3 error; the
    test's current folder is `tmp_path` (the project: a queued run's app is rendered again inside it)."""
    (tmp_path / "t.yaml").write_text(TEMPLATE)
    applied = invoke("apply", "t.yaml", "--runs-dir", "runs", "-o", "b", "--yes")
    assert applied.exit_code == 0, applied.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    one, two, three = _run_dirs(sweep_dir)
    _finish(mock, one, **{"result.json": json.dumps(receipt_for(one))})
    assert invoke("collect", str(sweep_dir)).exit_code == 0  # run 1 ok, run 2 launched into its slot
    assert invoke("cancel", str(two)).exit_code == 0
    invoke("collect", str(sweep_dir))  # run 3 launched into the slot the cancel freed
    _finish(mock, three, **{"error.txt": "boom", "error_status": "FAILURE"})
    invoke("collect", str(three))
    mock.clear()
    assert _states(sweep_dir) == ["ok", "interrupted", "error"]
    return sweep_dir


def test_a_resume_relaunches_the_interrupted_run_in_its_folder_and_keeps_the_earlier_attempt(mock, tmp_path,
                                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    one, two, three = _run_dirs(sweep_dir)
    before, calls = mf.read_manifest(two), _calls(mock)
    plan_bytes, ok_manifest = (two / "plan.json").read_bytes(), (one / "manifest.json").read_bytes()

    resumed = invoke("apply", str(sweep_dir))
    assert resumed.exit_code == 1, resumed.output  # run 3 stays `error`
    assert f"resume sweep {sweep_dir.name}: 1 of 3 run(s) to run; kept as they are: 1 ok, 1 error" in resumed.stdout
    assert f"relaunching again-002 (interrupted, attempt 2) -> {two}" in resumed.stdout
    assert "not relaunched" not in resumed.output
    after = mf.read_manifest(two)
    assert (after.state, after.run_id, after.name) == ("detached", before.run_id, before.name)
    new_call = after.modal.function_call_id
    assert new_call != before.modal.function_call_id and _calls(mock) == [*calls, new_call]
    # the earlier attempt: its manifest (the cancelled call, its transitions) kept beside the run
    archived = mf.read_manifest(two / "attempts" / "1")
    assert archived == before and [t.state for t in archived.transitions][-1] == "interrupted"
    assert "attempt 2 in this run folder; attempt 1 (interrupted, call " in after.notes[0]
    # the same plan: the same run folder and checkpoints on the Volume, and the app's PLAN_HASH takes it
    assert (two / "plan.json").read_bytes() == plan_bytes and after.plan_sha256 == before.plan_sha256
    app = Path(read_sweep(sweep_dir).runs[1].app).read_text()
    assert f"PLAN_HASH = {read_plan(two / 'plan.json').sha256()!r}" in app
    assert read_plan(two / "plan.json").checkpoint.resume == "auto"
    assert (one / "manifest.json").read_bytes() == ok_manifest  # an ok run is never touched
    assert sorted(p.parent.name for p in sweep_dir.glob("*/manifest.json")) == sorted(p.name for p in (one, two, three))

    status = invoke("status", str(sweep_dir))
    assert "3 run(s): 1 detached, 1 ok, 1 error" in status.stdout and "(attempt 2; earlier ones in attempts/)" in \
        status.stdout
    as_json = {Path(v["run_dir"]).name: v["attempt"] for v in json.loads(invoke("status", str(sweep_dir), "--json").stdout)}
    assert as_json == {one.name: 1, two.name: 2, three.name: 1}
    report = invoke("report", str(sweep_dir))
    assert report.exit_code == 0, report.output
    assert "again-002: attempt 2 shown; the earlier ones in attempts/ of its run folder" in report.stdout
    summary = (sweep_dir / "report" / "summary.csv").read_text().splitlines()
    assert summary[0].endswith(",attempt") and [line.rsplit(",", 1)[1] for line in summary[1:]] == ["1", "2", "1"]


def test_retry_failed_relaunches_the_error_run_as_slots_allow_and_never_an_ok_one(mock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    one, two, three = _run_dirs(sweep_dir)
    calls = _calls(mock)
    first = invoke("apply", str(sweep_dir), "--retry-failed")
    assert first.exit_code == 0, first.output
    assert "2 of 3 run(s) to run; kept as they are: 1 ok" in first.stdout
    # max_parallel 1: run 2 goes out, run 3 waits `planned` with its attempt archived
    assert _states(sweep_dir) == ["ok", "detached", "planned"]
    assert "1 run(s) launched, 1 waiting `planned` (max_parallel 1)" in first.stdout
    assert len(_calls(mock)) == len(calls) + 1
    assert mf.read_manifest(three / "attempts" / "1").state == "error"

    # the template with --resume is the same resume; run 2 in flight: never run again
    again = invoke("apply", "t.yaml", "--resume", str(sweep_dir), "--retry-failed")
    assert "1 of 3 run(s) to run" in again.stdout and len(_calls(mock)) == len(calls) + 1
    assert not (two / "attempts" / "2").exists()

    _finish(mock, two, **{"result.json": json.dumps(receipt_for(two))})
    collected = invoke("collect", str(sweep_dir))
    assert f"relaunching again-003 (error, attempt 2) -> {three}" in collected.output
    assert _states(sweep_dir) == ["ok", "ok", "detached"]
    assert len(_calls(mock)) == len(calls) + 2  # run 2 and run 3 once each; run 1 never
    assert not (one / "attempts").exists() and sorted(p.name for p in (three / "attempts").iterdir()) == ["1"]
    assert len(list(sweep_dir.glob("*/manifest.json"))) == 3


def test_the_earlier_attempts_logs_are_those_of_its_own_call(mock, tmp_path, monkeypatch):
    import modal

    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    old_call = mf.read_manifest(two).modal.function_call_id
    assert invoke("apply", str(sweep_dir)).exit_code == 1
    # The test server has no log RPCs (tests/modal/test_logs.py): the call whose logs are asked for is recorded.
    asked = []
    monkeypatch.setattr(modal.FunctionCall, "from_id", lambda call_id: asked.append(call_id) or SimpleNamespace(
        logs=SimpleNamespace(tail=lambda entries: iter([]))))
    current = invoke("logs", str(two))
    assert current.exit_code == 0 and f"`megaspec logs {two / 'attempts' / '1'}`" in current.stderr
    earlier = invoke("logs", str(two / "attempts" / "1"))
    assert earlier.exit_code == 0, earlier.output
    assert asked == [mf.read_manifest(two).modal.function_call_id, old_call]


def test_two_resumes_at_once_relaunch_the_run_once(mock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    racer = subprocess.Popen([sys.executable, str(Path(__file__).with_name("racer.py")), str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
                             cwd=tmp_path)
    try:
        for attempt in range(1, 4):
            calls = _calls(mock)
            racer.stdin.write(json.dumps([["apply", str(sweep_dir)], ["apply", str(sweep_dir)]]) + "\n")
            racer.stdin.flush()
            json.loads(racer.stdout.readline())
            m = mf.read_manifest(two)
            assert m.state == "detached" and len(_calls(mock)) == len(calls) + 1, f"try {attempt}"
            assert sorted(int(p.name) for p in (two / "attempts").iterdir()) == list(range(1, attempt + 1))
            assert invoke("cancel", str(two)).exit_code == 0  # interrupted again, for the next try
    finally:
        racer.stdin.close()
        racer.wait(timeout=60)
    assert _states(sweep_dir) == ["ok", "interrupted", "error"]


def test_a_resume_waits_for_a_claim_held_by_another_command_then_relaunches(mock, tmp_path, monkeypatch):
    """The sweep's claim is also taken for a moment by any command that records the runs' states in
    sweep.json: two resumes at once could each find it held by the other's refresh and both launch
    nothing ("another process is launching"). A resume now waits for the claim, then relaunches."""
    from megaspec.compiler.runs.sweep_manifest import SWEEP_CLAIM
    from megaspec.runtime.contract.claim import claim
    from tests.modal.test_network_and_signals import MEGASPEC

    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    calls = _calls(mock)
    with claim(sweep_dir / SWEEP_CLAIM):  # another command's refresh, here held until the resume waits for it
        proc = subprocess.Popen([MEGASPEC, "apply", str(sweep_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=os.environ.copy(), cwd=tmp_path)
        first = proc.stdout.readline()  # the resume has decided what to run; its launch waits for the claim
        assert first.startswith("resume sweep "), first + proc.stderr.read()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err  # run 3 stays `error` (no --retry-failed)
    assert f"relaunching again-002 (interrupted, attempt 2) -> {two}" in out and "not launching" not in out
    assert mf.read_manifest(two).state == "detached" and len(_calls(mock)) == len(calls) + 1


def test_a_sigterm_during_the_relaunch_leaves_the_run_truthful_and_a_later_resume_relaunches_it(mock, tmp_path,
                                                                                                monkeypatch):
    from tests.modal.test_network_and_signals import MEGASPEC, _wait_for

    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    spawns = mock.state()["rpcs"].count("FunctionMap")
    mock.set("slow_map.txt", "60")  # the server holds the relaunch's spawn until the signal has been handled
    proc = subprocess.Popen([MEGASPEC, "apply", str(sweep_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy(), cwd=tmp_path)
    try:
        _wait_for(lambda: mock.state()["rpcs"].count("FunctionMap") > spawns, "the relaunch's spawn", proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    m = mf.read_manifest(two)  # attempt 2, stopped before its call was known: said so, with its app to stop
    assert m.state == "interrupted" and m.modal.function_call_id is None and m.modal.app_id.startswith("ap-")
    assert m.notes[0].startswith("attempt 2 in this run folder") and "interrupted (SIGTERM)" in m.notes[-1]
    assert mf.read_manifest(two / "attempts" / "1").state == "interrupted" and "Traceback" not in err

    mock.clear()
    mock.set("rpc_status.json", json.dumps({"AppStop": ["PERMISSION_DENIED", "not yours"]}))
    spawns = mock.state()["rpcs"].count("FunctionMap")
    refused = invoke("apply", str(sweep_dir))  # its app not stopped: the run is not launched again beside it
    assert f"again-002: not run again: cannot stop app `{m.modal.app_id}`" in refused.stdout, refused.output
    assert mf.read_manifest(two) == m and mock.state()["rpcs"].count("FunctionMap") == spawns
    mock.clear()
    stops = mock.state()["rpcs"].count("AppStop")
    resumed = invoke("apply", str(sweep_dir))
    assert f"relaunching again-002 (interrupted, attempt 3) -> {two}" in resumed.stdout, resumed.output
    # a call the cut-off spawn may have started in its app would be untracked: that app is stopped first
    assert f"stopping app `{m.modal.app_id}` of again-002's cut-off launch" in resumed.stdout
    assert mock.state()["rpcs"].count("AppStop") == stops + 1
    assert mf.read_manifest(two).state == "detached" and sorted(p.name for p in (two / "attempts").iterdir()) == [
        "1", "2"]
    assert mf.read_manifest(two / "attempts" / "2") == m


@pytest.mark.slow
def test_the_relaunched_plan_continues_from_the_checkpoint_the_first_attempt_left_on_the_volume(
        mock, tmp_path, monkeypatch, restored_environ):  # noqa: F811 - fixture
    """The test server runs nothing, so each attempt's container is the generated function's body run here
    (`.local()`) on the plan its call was given, with the Volume a local folder (not under /tmp, which a
    mount may not cover): attempt 1 fails before step 3 (a drill) after saving step 2; the resume's call
    gets the same plan, which the app takes (no MS808) and which continues from step 2."""
    from megaspec.compiler.runs.backends.modal import find_entrypoint, load_app_module

    volume = Path(tempfile.mkdtemp(prefix="megaspec-test-vol-", dir="/var/tmp"))
    try:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "t.yaml").write_text(TEMPLATE.replace("/vol/ckpt", str(volume)).replace("[1, 2, 3]", "[1]"))
        assert invoke("apply", "t.yaml", "--runs-dir", "runs", "-o", "b", "--yes").exit_code == 0
        (sweep_dir,) = (tmp_path / "runs").iterdir()
        run_dir = sweep_dir / read_sweep(sweep_dir).runs[0].run_dir
        _, function = find_entrypoint(load_app_module(Path(read_sweep(sweep_dir).runs[0].app)))

        def container() -> dict:  # what the run's current call would return
            return function.local(read_plan(run_dir / "plan.json").to_json())

        monkeypatch.setenv("MEGASPEC_FAULT", "0:train:3:raise")
        first = container()
        monkeypatch.delenv("MEGASPEC_FAULT")
        assert first["status"] == "error" and first["checkpoint"]["saved_steps"] == [2], first["error"]
        _finish(mock, run_dir, **{"result.json": json.dumps(first)})
        invoke("collect", str(run_dir))
        assert mf.read_manifest(run_dir).state == "error"

        resumed = invoke("apply", str(sweep_dir), "--retry-failed")
        assert "relaunching again-001 (error, attempt 2)" in resumed.stdout, resumed.output
        second = container()
        assert second["status"] == "ok", second["error"]
        assert (second["steps"]["resumed_from"], second["steps"]["completed"]) == (2, 4)
        _finish(mock, run_dir, **{"result.json": json.dumps(second)})
        invoke("collect", str(run_dir))
        assert mf.read_manifest(run_dir).state == "ok"
        assert json.loads((run_dir / "attempts" / "1" / "receipt.json").read_text())["status"] == "error"
        # the container's run folder on the Volume (the plan's runs_dir) keeps its own earlier attempt
        on_volume = Path(read_plan(run_dir / "plan.json").modal.runs_dir) / run_dir.name
        assert on_volume.is_relative_to(volume)
        assert json.loads((on_volume / "attempts" / "1" / "receipt.json").read_text())["status"] == "error"
    finally:
        shutil.rmtree(volume, ignore_errors=True)


def test_status_of_a_relaunched_run_never_shows_the_earlier_attempts_progress_as_its_own(mock, tmp_path,
                                                                                          monkeypatch):
    """Until the new container starts (and moves it to `attempts/` on the Volume), the run's Volume folder
    holds attempt 1's progress.jsonl: put there as a container's commit would have left it."""
    from megaspec.compiler.runs.backends.modal_volume import volume_path
    from megaspec.runtime.contract.clock import utc_now
    from tests.modal.conftest import put_on_volume

    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    volume, path = volume_path(two, "progress.jsonl")

    def step(n: int, at: str) -> bytes:
        return (json.dumps({"step": n, "loss": 5.0, "losses": [5.0] * n, "lr": 1e-3, "grad_norm": 1.0,
                            "tokens_per_s": 640.0, "eta_s": 2.0, "at": at}) + "\n").encode()

    put_on_volume(volume, path, step(3, utc_now()))  # attempt 1's last step, before the resume
    assert invoke("apply", str(sweep_dir)).exit_code == 1
    mock.set("task_id", "ta-2")  # attempt 2's container is up, and has not logged a step yet
    status = invoke("status", str(sweep_dir))
    (row,) = [line for line in status.stdout.splitlines() if line.startswith(two.name)]
    assert " 3/4 " not in row and "no progress of this attempt on Volume `again-ckpt` yet" in row, status.output
    assert not (two / "progress.jsonl").exists()

    put_on_volume(volume, path, step(1, utc_now()))  # attempt 2's first step
    status = invoke("status", str(sweep_dir))
    (row,) = [line for line in status.stdout.splitlines() if line.startswith(two.name)]
    assert " 1/4 " in row, status.output


def test_an_earlier_attempts_receipt_on_the_volume_never_ends_the_relaunched_run(mock, tmp_path, monkeypatch):
    """Modal answering that the new call's result expired sends collect to the run's Volume folder, which
    still holds attempt 1's receipt (same run id, same plan) until the new container moves it."""
    from megaspec.compiler.runs.backends.modal_volume import volume_path
    from tests.modal.conftest import put_on_volume

    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    put_on_volume(*volume_path(two, "receipt.json"), json.dumps(receipt_for(two)).encode())  # started 2026-01-02
    assert invoke("apply", str(sweep_dir)).exit_code == 1

    def expired(queued_at: str | None = None) -> mf.Manifest:
        """The relaunched call answered as expired (the server's answer to an unknown call id)."""
        m = mf.read_manifest(two)
        unknown = mf.ModalCall.model_validate({**dict(m.modal), "function_call_id": "fc-unknown"})
        moved = [mf.Transition(state="planned", at=queued_at), *m.transitions[1:]] if queued_at else m.transitions
        mf.write_manifest(two, m.model_copy(update={"modal": unknown, "transitions": moved}))
        invoke("collect", str(two))
        return mf.read_manifest(two)

    m = expired()  # queued minutes ago: the answer is not trusted, and the receipt there is not this attempt's
    assert m.state == "detached" and "the one there is an earlier attempt's" in m.notes[-1], m.notes
    assert not (two / "receipt.json").exists()
    m = expired("2026-01-03T00:00:00.000000Z")  # queued long ago: trusted; this attempt left no receipt
    assert m.state == "error" and m.error.stage == "persistence" and "earlier attempt's" in m.error.message


def test_a_run_whose_attempt_cannot_be_archived_stays_as_it_was_and_says_why(mock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = ended_sweep(mock, tmp_path)
    two = _run_dirs(sweep_dir)[1]
    (two / "attempts").write_text("")  # a file where the archive folder goes: its creation fails (an OSError)
    before, calls = (two / "manifest.json").read_bytes(), _calls(mock)
    resumed = invoke("apply", str(sweep_dir))
    assert "again-002: not run again: " in resumed.stdout and "Traceback" not in resumed.output, resumed.output
    assert (two / "manifest.json").read_bytes() == before and _calls(mock) == calls
