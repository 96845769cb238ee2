"""apply -> collect -> cancel on Modal, through the real `modal` client and Modal's own test server.

Every answer here is the server's: pending, a container named, a returned receipt, a failure of
each status, rejected tokens, a failing function creation or disconnect, a cancel. The CLI runs
in-process (click's CliRunner), as a user would type it.
"""

from __future__ import annotations

import json
import pickle
import shutil
import signal
import threading
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from tests.modal.conftest import point_client_at
from tests.unit.test_manifest import make_receipt

SPEC = "specs/cpu-local.yaml"  # no Secrets to look up: the mock knows none


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def apply_modal(tmp_path, *extra: str):
    result = invoke("apply", SPEC, "--target", "modal", "--runs-dir", str(tmp_path / "runs"),
                    "--build-dir", str(tmp_path / "build"), *extra)
    run_dirs = sorted((tmp_path / "runs").glob("*/manifest.json"))
    return result, (run_dirs[-1].parent if run_dirs else None)


@pytest.fixture
def detached(mock, tmp_path):
    """A run launched through the mock and left `detached`."""
    result, run_dir = apply_modal(tmp_path)
    assert result.exit_code == 0, result.output
    return run_dir


def receipt_for(run_dir, status: str = "ok") -> dict:
    m = mf.read_manifest(run_dir)
    receipt = make_receipt(status)
    return {**receipt, "run_id": m.run_id, "plan": {**receipt["plan"], "sha256": m.plan_sha256}}


def test_apply_detaches_and_records_the_call(mock, tmp_path):
    result, run_dir = apply_modal(tmp_path)
    assert result.exit_code == 0, result.output
    m = mf.read_manifest(run_dir)
    assert m.state == "detached" and m.modal.function_call_id.startswith("fc-") and m.modal.app_id.startswith("ap-")
    assert f"detached: {m.modal.function_call_id}" in result.stdout
    assert "Created Function run." in result.output  # Modal's own build and creation output is shown
    assert "App completed" not in result.output  # the app is detached, not completed
    state = mock.state()
    assert "FunctionMap" in state["rpcs"] and m.modal.function_call_id in state["function_calls"]


def test_collect_pending_stays_detached_then_running_once_a_container_is_named(mock, detached):
    result = invoke("collect", str(detached))
    assert result.exit_code == 0 and result.output.startswith("state: detached (polled ")
    assert mf.read_manifest(detached).state == "detached"
    mock.set("task_id", "ta-01CONTAINER")
    result = invoke("collect", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 0 and m.state == "running" and m.modal.task_id == "ta-01CONTAINER"


def test_collect_stores_the_returned_receipt_of_this_run(mock, detached):
    mock.set("result.json", json.dumps(receipt_for(detached)))
    result = invoke("collect", str(detached))
    assert result.exit_code == 0 and result.output.startswith("status: ok"), result.output
    m = mf.read_manifest(detached)
    assert m.state == "ok" and m.receipt == "receipt.json" and m.last_polled_at
    assert invoke("collect", str(detached)).exit_code == 0  # idempotent: a finished run is not polled again


def test_collect_refuses_a_receipt_of_another_run(mock, detached):
    mock.set("result.json", json.dumps(make_receipt("ok")))  # another run id and plan hash
    result = invoke("collect", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 1 and m.state == "error" and m.error.stage == "record"
    assert "belongs to run `tiny-cpu-20260102-030405-abcd`" in m.error.message and m.run_id in m.error.message
    assert not (detached / "receipt.json").exists()


@pytest.mark.parametrize(("status", "state", "expected"), [
    ("FAILURE", "error", "RuntimeError: boom on rank 0"),
    ("TIMEOUT", "error", "hit its timeout (resources.timeout)"),
    ("INTERNAL_FAILURE", "error", "InternalFailure"),
    ("TERMINATED", "interrupted", "Modal terminated the call (stopped, not failed)"),
])
def test_collect_a_call_that_ended_without_a_receipt(mock, detached, status, state, expected):
    mock.set("error.txt", "boom on rank 0")
    mock.set("error_status", status)
    result = invoke("collect", str(detached))
    m = mf.read_manifest(detached)
    assert m.state == state and expected in (m.error.message if m.error else m.notes[-1])
    assert result.exit_code == 1  # the run did not succeed; 130 would say collect itself was interrupted
    assert result.output.startswith(f"status: {state}\n") and expected in result.output
    if state == "error":
        assert "read its output with `megaspec logs RUN`" in result.output  # there is no receipt to read


def test_collect_with_rejected_credentials_says_so_and_leaves_the_run(mock, detached, monkeypatch, tmp_path):
    before = (detached / "manifest.json").read_bytes()
    point_client_at(monkeypatch, mock.url, tmp_path / "home", {"MODAL_TOKEN_ID": "ak-revoked",
                                                               "MODAL_TOKEN_SECRET": "as-mock"})
    result = invoke("collect", str(detached))
    assert result.exit_code == 1 and result.stderr.startswith("error: Modal rejected the credentials")
    assert "cannot reach" not in result.stderr and "`modal token new`" in result.stderr
    assert (detached / "manifest.json").read_bytes() == before  # no last_polled_at for a poll that never happened


def test_apply_when_function_creation_fails_is_a_bootstrap_error(mock, tmp_path):
    mock.set("fail_create.txt", "gpu type not allowed in this workspace")
    result, run_dir = apply_modal(tmp_path)
    m = mf.read_manifest(run_dir)
    assert result.exit_code == 1 and m.state == "error" and m.error.stage == "bootstrap"
    assert "gpu type not allowed in this workspace" in result.output and m.modal.app_id.startswith("ap-")


def test_apply_when_disconnect_fails_after_the_spawn_keeps_the_call_and_says_so(mock, tmp_path):
    mock.set("fail_disconnect.txt", "disconnect went wrong")
    result, run_dir = apply_modal(tmp_path)
    m = mf.read_manifest(run_dir)
    assert result.exit_code == 0 and m.state == "detached" and m.modal.function_call_id
    assert "disconnecting failed" in m.notes[0] and f"note: {m.notes[0]}" in result.stdout


def test_ctrl_c_during_the_spawn_ends_interrupted_with_the_stop_command(mock, tmp_path):
    spawns_before = mock.state()["rpcs"].count("FunctionMap")
    mock.set("slow_map.txt", "60")  # the server holds the spawn until the Ctrl-C has been handled
    stop = threading.Event()

    def ctrl_c_once_the_server_has_the_spawn() -> None:
        while not stop.is_set():
            if mock.state()["rpcs"].count("FunctionMap") > spawns_before:  # state() waits for the server's next write
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # a real Ctrl-C wakes the wait
                return

    watcher = threading.Thread(target=ctrl_c_once_the_server_has_the_spawn, daemon=True)
    watcher.start()
    try:
        result, run_dir = apply_modal(tmp_path)
    finally:
        stop.set()
        watcher.join()
    m = mf.read_manifest(run_dir)
    assert result.exit_code == 130 and m.state == "interrupted", result.output
    assert m.modal.app_id.startswith("ap-") and m.modal.function_call_id is None
    assert f"`modal app stop {m.modal.app_id}`" in m.notes[0] and m.notes[0] in result.output
    assert "NoneType" not in result.output


def test_cancel_terminates_the_containers(mock, detached):
    result = invoke("cancel", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 0 and m.state == "interrupted" and "containers terminated" in m.notes[-1]
    mine = [r for r in mock.state()["cancel_requests"] if r["function_call_id"] == m.modal.function_call_id]
    assert mine == [{"function_call_id": m.modal.function_call_id, "terminate_containers": True}]  # the server
    # is shared by the tests of a worker: others' cancels are in its record too


def test_collect_an_expired_result_without_a_volume_ends_in_persistence(mock, detached):
    m = mf.read_manifest(detached)
    expired = mf.ModalCall.model_validate({**dict(m.modal), "function_call_id": "fc-unknown"})
    launched = [mf.Transition(state="planned", at="2026-01-02T03:04:05.000000Z"), *m.transitions[1:]]
    mf.write_manifest(detached, m.model_copy(update={"modal": expired, "transitions": launched}))
    result = invoke("collect", str(detached))  # the server answers an unknown call id with OutputExpiredError,
    # as Modal does after 7 days
    m = mf.read_manifest(detached)
    assert result.exit_code == 1 and m.state == "error" and m.error.stage == "persistence"
    assert "result expired" in m.error.message and "not on a Volume" in m.error.message


def test_collect_an_expired_result_with_a_receipt_copied_from_another_run_is_refused(mock, detached):
    m = mf.read_manifest(detached)
    expired = mf.ModalCall.model_validate({**dict(m.modal), "function_call_id": "fc-unknown"})
    mf.write_manifest(detached, m.model_copy(update={"modal": expired}))
    (detached / "receipt.json").write_text(json.dumps(make_receipt("ok")))
    invoke("collect", str(detached))
    m = mf.read_manifest(detached)
    assert m.state == "error" and m.error.stage == "record" and "belongs to run" in m.error.message


def test_an_unreachable_modal_is_said_plainly_within_the_bound(mock, detached, monkeypatch, tmp_path):
    from megaspec.compiler.runs.backends import modal_client

    monkeypatch.setattr(modal_client, "CONNECT_TIMEOUT_S", 0.3)  # 15 s in use
    monkeypatch.setattr(modal_client, "_QUIET_S", 0.1)
    point_client_at(monkeypatch, "http://127.0.0.1:9", tmp_path / "home")  # nothing listens on port 9
    before = (detached / "manifest.json").read_bytes()
    runs = tmp_path / "more-runs"
    for args in (["collect", str(detached)], ["cancel", str(detached)], ["status", str(detached.parent)],
                 ["apply", SPEC, "--target", "modal", "--runs-dir", str(runs), "--build-dir", str(tmp_path / "b")]):
        result = invoke(*args)
        assert result.exit_code == 1
        assert "connecting to Modal at http://127.0.0.1:9 (up to 0.3 s)..." in result.stderr
        assert "error: could not reach Modal at http://127.0.0.1:9 within 0.3 s" in result.stderr
        assert "image" not in result.stderr
    assert (detached / "manifest.json").read_bytes() == before and not runs.exists()


def test_status_lists_runs_oldest_first_after_one_poll_each(mock, tmp_path):
    first = apply_modal(tmp_path)[1]
    second = copy_run(first, "tiny-cpu-20991231-000000-zzzz")
    mock.set("task_id", "ta-7")
    result = invoke("status", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    header, *rows, counts = result.stdout.splitlines()
    assert header.split() == ["RUN", "STATE", "BACKEND", "LANE", "LAUNCHED", "(UTC)", "STEP", "LOSS", "TOK/S",
                              "ELAPSED", "ETA", "DETAIL"]
    assert [r.split()[0] for r in rows] == [first.name, second.name] and counts == "2 run(s): 2 running"
    assert all(r.split()[1] == "running" and "container ta-7; progress is only in the container" in r for r in rows)
    data = json.loads(invoke("status", str(tmp_path / "runs"), "--json").stdout)
    assert [d["manifest"]["state"] for d in data] == ["running", "running"]


def test_apply_refuses_a_modal_client_of_another_minor_version(mock, tmp_path, monkeypatch):
    import modal

    monkeypatch.setattr(modal, "__version__", "1.7.0")
    result, run_dir = apply_modal(tmp_path)
    assert result.exit_code == 2 and run_dir is None
    assert "error: the generated app targets modal 1.6.x, but modal 1.7.0 is installed" in result.stderr
    assert "pip install 'megaspec[modal]'" in result.stderr


@pytest.mark.parametrize(("module", "target", "extra"), [("modal", "modal", "megaspec[modal]"),
                                                         ("torch", "local", "megaspec[runtime]")])
def test_a_missing_extra_is_a_usage_error_naming_it(tmp_path, monkeypatch, module, target, extra):
    import sys

    monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if not installed
    result = invoke("apply", SPEC, "--target", target, "--runs-dir", str(tmp_path / "runs"),
                    "--build-dir", str(tmp_path / "build"))
    assert result.exit_code == 2 and "not installed here" in result.stderr and "\n  = help: pip install" in result.stderr
    assert extra in result.stderr and "internal error" not in result.output
    assert not (tmp_path / "runs").exists()


def copy_run(run_dir, name: str):
    """Another run directory of the same call, as if launched later under `name`."""
    copy = run_dir.parent / name
    shutil.copytree(run_dir, copy)
    m = mf.read_manifest(copy)
    mf.write_manifest(copy, m.model_copy(update={"run_id": name, "transitions": [
        mf.Transition(state=t.state, at="2099" + t.at[4:]) for t in m.transitions]}))
    return copy


def test_collect_a_runs_directory_polls_every_unfinished_run(mock, detached):
    later = copy_run(detached, "tiny-cpu-20991231-000000-zzzz")
    done = detached.parent / "tiny-cpu-20000101-000000-aaaa"
    mf.write_manifest(done, mf.advance(mf.read_manifest(detached), "interrupted"))
    before = (done / "manifest.json").read_bytes()
    mock.set("task_id", "ta-2")
    result = invoke("collect", str(detached.parent))
    assert result.exit_code == 1, result.output  # one run did not succeed, as `collect RUN_DIR` of it says
    assert invoke("collect", str(done)).exit_code == 1
    assert result.stdout.splitlines() == [f"{done.name}: interrupted", f"{detached.name}: running",
                                          f"{later.name}: running"]
    assert (done / "manifest.json").read_bytes() == before


def test_status_watch_redraws_until_every_run_has_finished(mock, detached, monkeypatch):
    from megaspec.compiler.commands import runs

    waits: list[float] = []

    def fail_the_call_on_the_first_wait(seconds: float) -> None:
        """The call fails on Modal once the first table is drawn and the watch waits to redraw."""
        waits.append(seconds)
        mock.set("error.txt", "boom")

    monkeypatch.setattr(runs, "time", SimpleNamespace(sleep=fail_the_call_on_the_first_wait))
    result = invoke("status", str(detached.parent), "--watch")
    assert result.exit_code == 1 and waits == [runs.WATCH_INTERVAL_S]  # 1: a run ended in error
    assert result.stdout.count("RUN ") >= 2 and "detached" in result.stdout
    *_, last_row, counts = result.stdout.rstrip().splitlines()
    assert last_row.split()[1] == "error" and counts == "1 run(s): 1 error"


def test_cancel_of_a_call_that_already_finished_stores_its_receipt(mock, detached):
    mock.set("result.json", json.dumps(receipt_for(detached)))
    result = invoke("cancel", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 0 and "had already ended on Modal: nothing to cancel" in result.output
    cancelled = [r["function_call_id"] for r in mock.state()["cancel_requests"]]
    assert m.state == "ok" and m.receipt == "receipt.json" and m.modal.function_call_id not in cancelled


def test_an_expired_answer_for_a_call_launched_minutes_ago_is_not_trusted(mock, detached):
    m = mf.read_manifest(detached)
    unknown = mf.ModalCall.model_validate({**dict(m.modal), "function_call_id": "fc-unknown"})
    mf.write_manifest(detached, m.model_copy(update={"modal": unknown}))  # answered as expired by the server
    result = invoke("collect", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 0 and m.state == "detached" and m.error is None
    assert "not trusted, the run is unchanged" in m.notes[-1] and "not trusted" in result.output


def test_a_receipt_with_a_nan_loss_is_not_ok_and_reads_back(mock, detached):
    receipt = receipt_for(detached)
    mock.set("result.pkl", pickle.dumps({**receipt, "losses": [2.5, float("nan")]}))  # as Modal returns a dict
    result = invoke("collect", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 1 and m.state == "error" and m.receipt == "receipt.json", result.output
    assert "a loss is not a number (losses[1] = nan)" in m.error.message
    shown = invoke("receipts", "show", str(detached / "receipt.json"))
    assert shown.exit_code == 0, shown.output
    assert '"NaN"' in (detached / "receipt.json").read_text()  # one spelling, read back as the float


def test_cancel_against_a_server_that_never_answers_is_bounded_and_says_what_it_waited_for(mock, detached,
                                                                                         monkeypatch):
    from megaspec.compiler.runs.backends import modal_client

    monkeypatch.setattr(modal_client, "ANSWER_TIMEOUT_S", 0.5)  # 20 s in use
    mock.set("rpc_hang.txt", "FunctionCallCancel")  # taken, never answered
    result = invoke("cancel", str(detached))
    m = mf.read_manifest(detached)
    assert result.exit_code == 1 and m.state == "detached", result.output
    assert f"Modal did not answer the cancel of `{m.modal.function_call_id}` within 0.5 s" in result.stderr
    assert "the run is unchanged (state `detached`)" in result.stderr and f"modal app stop {m.modal.app_id}" in \
        result.stderr


@pytest.mark.parametrize("verb", ["collect", "status", "cancel"])
def test_every_verb_stops_waiting_for_a_server_that_takes_connections_and_never_answers(mock, detached,
                                                                                       monkeypatch, verb):
    from megaspec.compiler.runs.backends import modal_client

    monkeypatch.setattr(modal_client, "CONNECT_TIMEOUT_S", 0.5)  # 15 s in use
    monkeypatch.setattr(modal_client, "_QUIET_S", 0.1)
    mock.set("rpc_hang.txt", "*")
    result = invoke(verb, str(detached))
    assert result.exit_code == 1 and f"could not reach Modal at {mock.url} within 0.5 s" in result.stderr
    assert mf.read_manifest(detached).state == "detached"


def test_a_broken_modal_toml_is_a_usage_error_naming_the_file(mock, tmp_path, monkeypatch):
    import sys

    config = tmp_path / "home" / ".modal.toml"
    config.write_text('[default\ntoken_id = "ak-1"\n')
    for name in [n for n in sys.modules if n == "modal" or n.startswith("modal.")]:
        monkeypatch.delitem(sys.modules, name)  # the client reads its file on import: import it afresh
    result, run_dir = apply_modal(tmp_path)
    assert result.exit_code == 2 and f"cannot read the Modal configuration file `{config}`" in result.stderr
    assert "Key group not on a line by itself" in result.stderr and "internal error" not in result.output


def test_the_manifest_records_where_the_run_was_launched_from(mock, detached):
    m = mf.read_manifest(detached)
    assert (m.modal.workspace, m.modal.environment, m.modal.profile) == ("test-workspace", None, "default")


@pytest.mark.parametrize("status", ["NOT_FOUND", "PERMISSION_DENIED"])
def test_a_poll_from_another_workspace_says_so_and_changes_nothing(mock, detached, status):
    before = (detached / mf.MANIFEST_FILE).read_bytes()
    mock.set("rpc_status.json", json.dumps({"FunctionGetOutputs": [status, "no such function call"]}))
    result = invoke("collect", str(detached))
    assert result.exit_code == 1 and "Modal does not know call `fc-" in result.stderr, result.output
    assert "launched from workspace `test-workspace`" in result.stderr and "the run is unchanged" in result.stderr
    assert "`modal profile activate PROFILE`" in result.stderr
    assert (detached / mf.MANIFEST_FILE).read_bytes() == before
