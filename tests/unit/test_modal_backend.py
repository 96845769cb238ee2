"""`collect` against every answer Modal's `FunctionCall.get(timeout=0)` can give.

Modal's servers are unreachable from tests, so `FakeFunctionCall` stands in for the server's
responses: it is the one allowed fake, injected through collect's `function_call_from_id` seam.
It raises the real `modal.exception` classes (and the builtin TimeoutError), so the catch order
under test is the one production code meets, and its call graph is built from modal's own
`InputInfo` / `InputStatus` types.
"""

from __future__ import annotations

import json

import pytest
from modal.call_graph import InputInfo, InputStatus
from modal.exception import (
    AuthError,
    FunctionTimeoutError,
    InternalFailure,
    OutputExpiredError,
    RemoteError,
)

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.backends import modal as backend
from tests.unit.test_manifest import CRASH, make_manifest, make_receipt

CALL_ID = "fc-01TEST"


class FakeFunctionCall:
    """Stands in for Modal's server (see the module docstring): returns or raises what it was given."""

    def __init__(self, outcome, graph: list[InputInfo] | None = None, graph_error: Exception | None = None):
        self.outcome, self.graph, self.graph_error = outcome, graph or [], graph_error
        self.timeouts: list[float | None] = []

    def get(self, timeout=None):
        self.timeouts.append(timeout)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def get_call_graph(self):
        if self.graph_error:
            raise self.graph_error
        return self.graph

    def cancel(self, terminate_containers=False):
        self.cancelled = terminate_containers
        if isinstance(self.outcome, AuthError):
            raise self.outcome


def node(status: InputStatus, task_id: str = "", children=()) -> InputInfo:
    return InputInfo(input_id="in-1", function_call_id=CALL_ID, task_id=task_id, status=status,
                     function_name="train", module_name="app", children=list(children))


def detached_run(tmp_path, state: str = "detached"):
    m = mf.advance(make_manifest("planned", "modal"), state, modal=mf.ModalCall(
        function_call_id=CALL_ID, app_id="ap-01TEST", dashboard_url="https://modal.com/apps/x/ap-01TEST"))
    mf.write_manifest(tmp_path, m)
    return tmp_path


def collect_with(run_dir, fake: FakeFunctionCall, **kwargs):
    seen = []

    def from_id(call_id):
        seen.append(call_id)
        return fake

    manifest = backend.collect(run_dir, function_call_from_id=from_id, **kwargs)
    assert seen in ([CALL_ID], []) and fake.timeouts in ([0], [])  # one immediate poll, never a wait
    assert mf.read_manifest(run_dir) == manifest  # what collect returns is what it wrote
    return manifest


def test_collect_done_stores_receipt_and_finishes_ok(tmp_path):
    m = collect_with(detached_run(tmp_path), FakeFunctionCall(make_receipt("ok")))
    assert m.state == "ok" and m.receipt == "receipt.json" and m.last_polled_at and m.completed_at
    assert [t.state for t in m.transitions] == ["planned", "detached", "ok"]
    assert json.loads((tmp_path / "receipt.json").read_text())["run_id"] == "tiny-cpu-20260102-030405-abcd"


def test_collect_is_idempotent_once_finished(tmp_path):
    run_dir = detached_run(tmp_path)
    first = collect_with(run_dir, FakeFunctionCall(make_receipt("ok")))
    never = FakeFunctionCall(AssertionError("a finished run must not be polled again"))
    assert collect_with(run_dir, never) == first and never.timeouts == []


def test_collect_done_with_failed_receipt_names_rank_and_stage(tmp_path):
    m = collect_with(detached_run(tmp_path, "running"), FakeFunctionCall(make_receipt("error", CRASH)))
    assert m.state == "error" and m.receipt == "receipt.json"
    assert (m.error.stage, m.error.rank, m.error.error_file) == ("remote", 1, "runs/x/logs/1/error.json")


def test_collect_done_with_invalid_receipt_is_a_record_error(tmp_path):
    m = collect_with(detached_run(tmp_path), FakeFunctionCall({"status": "ok"}))
    assert m.state == "error" and m.error.stage == "record"
    assert m.error.message.startswith("the call's return value: receipt schema_version is None")


def test_collect_pending_without_container_stays_detached(tmp_path):
    m = collect_with(detached_run(tmp_path), FakeFunctionCall(TimeoutError(), graph=[node(InputStatus.PENDING)]))
    assert m.state == "detached" and m.last_polled_at and m.completed_at is None
    assert m.modal.call_graph == [{"function_name": "train", "status": "PENDING", "task_id": ""}]


def test_collect_pending_with_container_is_running(tmp_path):
    graph = [node(InputStatus.PENDING, children=[node(InputStatus.PENDING, task_id="ta-01CONTAINER")])]
    m = collect_with(detached_run(tmp_path), FakeFunctionCall(TimeoutError(), graph=graph))
    assert m.state == "running" and m.modal.task_id == "ta-01CONTAINER" and len(m.modal.call_graph) == 2


def test_collect_pending_survives_a_broken_call_graph(tmp_path):
    m = collect_with(detached_run(tmp_path, "running"),
                     FakeFunctionCall(TimeoutError(), graph_error=RuntimeError("graph truncated")))
    assert m.state == "running" and m.modal.call_graph == []


def test_collect_never_trusts_the_call_graph_for_success(tmp_path):
    graph = [node(InputStatus.SUCCESS, task_id="ta-1")]
    m = collect_with(detached_run(tmp_path), FakeFunctionCall(TimeoutError(), graph=graph))
    assert m.state == "running" and m.receipt is None


@pytest.mark.parametrize(("error", "expected"), [
    (FunctionTimeoutError("Function timed out after 1800s"), "hit its timeout (resources.timeout)"),
    (RemoteError("container was terminated"), "RemoteError: container was terminated"),
    (InternalFailure("worker lost"), "InternalFailure: worker lost"),
    (ValueError("user code raised"), "ValueError: user code raised"),
])
def test_collect_failed_call_is_a_remote_error_with_graph_snapshot(tmp_path, error, expected):
    graph = [node(InputStatus.FAILURE, task_id="ta-9")]
    m = collect_with(detached_run(tmp_path, "running"), FakeFunctionCall(error, graph=graph))
    assert m.state == "error" and m.error.stage == "remote" and expected in m.error.message
    assert m.modal.call_graph == [{"function_name": "train", "status": "FAILURE", "task_id": "ta-9"}]


def test_collect_unreachable_modal_leaves_the_run_alone(tmp_path):
    run_dir = detached_run(tmp_path)
    with pytest.raises(mf.BackendError, match="cannot reach Modal") as info:
        backend.collect(run_dir, function_call_from_id=lambda _: FakeFunctionCall(AuthError("token revoked")))
    assert "modal token info" in info.value.hint
    m = mf.read_manifest(run_dir)
    assert m.state == "detached" and m.error is None and m.last_polled_at


def test_collect_expired_uses_a_receipt_fetched_by_hand(tmp_path):
    run_dir = detached_run(tmp_path)
    (run_dir / "receipt.json").write_text(json.dumps(make_receipt("ok")))
    m = collect_with(run_dir, FakeFunctionCall(OutputExpiredError("expired")))
    assert m.state == "ok"


def modal_plan_json(run_dir, run_id: str = "tiny-cpu-20260102-030405-abcd") -> None:
    """plan.json of a real Modal spec (checkpoints Volume `ms-ckpt` at /vol/ckpt), as apply leaves it."""
    from megaspec.compiler.codegen.lower import lower
    from megaspec.compiler.commands.compile import origins_of
    from megaspec.compiler.lint.check import check_spec

    checked = check_spec("specs/h100-smoke.yaml")
    plan = lower(checked.spec, spec_path="specs/h100-smoke.yaml", spec_sha256="a" * 64,
                 origins=origins_of(checked), run_id=run_id)
    (run_dir / "plan.json").write_text(plan.to_json())


def test_collect_expired_reads_the_receipt_from_the_volume(tmp_path):
    run_dir = detached_run(tmp_path, "running")
    modal_plan_json(run_dir)
    reads = []

    def read_volume_file(volume, path):
        reads.append((volume, path))
        return json.dumps(make_receipt("ok")).encode()

    m = collect_with(run_dir, FakeFunctionCall(OutputExpiredError("expired")), read_volume_file=read_volume_file)
    assert reads == [("ms-ckpt", "megaspec-runs/tiny-cpu-20260102-030405-abcd/receipt.json")]
    assert m.state == "ok" and "Volume `ms-ckpt`" in m.notes[0] and "7 days" in m.notes[0]


def test_collect_expired_and_unreadable_volume_says_how_to_fetch_it(tmp_path):
    run_dir = detached_run(tmp_path, "running")
    modal_plan_json(run_dir)

    def read_volume_file(volume, path):
        raise ConnectionError("offline")

    m = collect_with(run_dir, FakeFunctionCall(OutputExpiredError("expired")), read_volume_file=read_volume_file)
    assert m.state == "running" and m.error is None
    assert (f"run `modal volume get ms-ckpt megaspec-runs/tiny-cpu-20260102-030405-abcd/receipt.json "
            f"{run_dir / 'receipt.json'}`") in m.notes[0]


def test_collect_local_run_is_refused_with_a_hint(tmp_path):
    mf.write_manifest(tmp_path, make_manifest("running", "local"))
    with pytest.raises(mf.BackendError, match="is a local run in state `running`; nothing to collect"):
        backend.collect(tmp_path, function_call_from_id=lambda _: pytest.fail("must not poll"))


def test_missing_credentials_are_a_backend_error_with_hint(monkeypatch):
    import modal.config

    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setattr(modal.config, "_user_config", {})  # as if ~/.modal.toml did not exist
    with pytest.raises(mf.BackendError, match="Modal credentials not found") as info:
        backend.require_credentials()
    assert "`modal token new`" in info.value.hint
    monkeypatch.setenv("MODAL_TOKEN_ID", "ak-test")
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "as-test")
    backend.require_credentials()  # configured: no error, and no network call either


def test_cancel_stops_the_call_with_its_containers_and_ends_interrupted(tmp_path):
    fake = FakeFunctionCall(TimeoutError())
    m = backend.cancel(detached_run(tmp_path, "running"), function_call_from_id=lambda call_id: fake)
    assert fake.cancelled is True  # terminate_containers: the GPUs are released, not left billing
    assert m.state == "interrupted" and m.completed_at and "cancelled with `megaspec cancel`" in m.notes[-1]
    assert mf.read_manifest(tmp_path) == m


def test_cancel_leaves_a_finished_run_and_a_local_run_alone(tmp_path):
    finished = mf.advance(make_manifest("running", "modal"), "ok")
    mf.write_manifest(tmp_path, finished)
    assert backend.cancel(tmp_path, function_call_from_id=lambda _: pytest.fail("no call")) == finished
    mf.write_manifest(tmp_path, make_manifest("running", "local"))
    with pytest.raises(mf.BackendError, match="local run in state `running`; nothing to cancel"):
        backend.cancel(tmp_path, function_call_from_id=lambda _: pytest.fail("no call"))


def test_cancel_that_cannot_reach_modal_keeps_the_manifest(tmp_path):
    run_dir = detached_run(tmp_path)
    before = mf.read_manifest(run_dir)
    with pytest.raises(mf.BackendError, match="cannot cancel `fc-01TEST`: AuthError") as e:
        backend.cancel(run_dir, function_call_from_id=lambda _: FakeFunctionCall(AuthError("bad token")))
    assert "modal app stop ap-01TEST" in e.value.hint and mf.read_manifest(run_dir) == before
