"""The few answers Modal's test server cannot give, each with the smallest stand-in and why.

- A call graph that fails, or that claims SUCCESS while `get()` still says pending: the server's
  graph is fixed (empty, or one PENDING input), so `_call_graph` reads a graph-only stand-in.
- A poll that never answers: the server answers every call at once, so one run's poll is held on
  an event (the other runs are polled for real).
"""

from __future__ import annotations

import threading

import pytest
from modal.call_graph import InputInfo, InputStatus
from modal.exception import InternalError, ResourceExhaustedError, ServiceError

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.backends import modal_collect
from tests.modal.test_lifecycle import apply_modal, copy_run, invoke
from tests.unit.test_manifest import make_manifest


class GraphOnly:
    """A call whose graph is all that is asked (see the module docstring)."""

    def __init__(self, graph=None, error: Exception | None = None):
        self.graph, self.error = graph or [], error

    def get_call_graph(self):
        if self.error:
            raise self.error
        return self.graph


def node(status: InputStatus, task_id: str = "", children=()) -> InputInfo:
    return InputInfo(input_id="in-1", function_call_id="fc-1", task_id=task_id, status=status,
                     function_name="train", module_name="app", children=list(children))


def detached_manifest(state: str = "detached"):
    return mf.advance(make_manifest("planned", "modal"), state, modal=mf.ModalCall(function_call_id="fc-1"))


def test_a_nested_container_in_the_graph_means_running():
    graph = [node(InputStatus.PENDING, children=[node(InputStatus.PENDING, task_id="ta-01CONTAINER")])]
    m = modal_collect._mark_progress(detached_manifest(), modal_collect._call_graph(GraphOnly(graph)))
    assert m.state == "running" and m.modal.task_id == "ta-01CONTAINER" and len(m.modal.call_graph) == 2


def test_a_broken_call_graph_does_not_fail_the_collector():
    graph = modal_collect._call_graph(GraphOnly(error=RuntimeError("truncated")))
    m = modal_collect._mark_progress(detached_manifest("running"), graph)
    assert m.state == "running" and m.modal.call_graph == []


@pytest.mark.parametrize("status", [InputStatus.SUCCESS, InputStatus.FAILURE])
def test_the_call_graph_never_decides_the_outcome(status):
    graph = modal_collect._call_graph(GraphOnly([node(status, task_id="ta-1")]))
    m = modal_collect._mark_progress(detached_manifest(), graph)
    assert m.state == "running" and m.receipt is None and m.error is None


class FailingPoll:
    """A poll whose RPC fails in transit: the test server cannot be made to drop or refuse one poll."""

    def __init__(self, error: Exception):
        self.error = error

    def get(self, timeout=None):
        raise self.error


@pytest.mark.parametrize("error", [ServiceError("unavailable"), InternalError("rpc failed"),
                                   ResourceExhaustedError("rate limited"), OSError("connection reset")])
def test_a_poll_that_fails_in_transit_is_not_a_failed_run(error):
    outcome, payload = modal_collect.poll(FailingPoll(error))
    assert outcome == "unreachable" and type(error).__name__ in payload


def test_a_poll_that_never_answers_is_reported_unknown_without_waiting_for_it(mock, tmp_path, monkeypatch):
    from megaspec.compiler.runs import refresh

    _, detached = apply_modal(tmp_path)
    hung = copy_run(detached, "tiny-cpu-20991231-000000-zzzz")
    mock.set("task_id", "ta-2")
    answered = refresh._poll_one(detached)  # the real poll's answer, taken before any poll is timed
    release, hung_returned = threading.Event(), threading.Event()

    def poll(run_dir):
        if run_dir != hung:
            return answered  # at once: the 1 s below is spent only by the hung poll, whatever the load
        release.wait(600)  # a hang guard only: the test releases it
        hung_returned.set()
        return answered

    monkeypatch.setattr(refresh, "_poll_one", poll)
    monkeypatch.setattr(refresh, "POLL_TIMEOUT_S", 1.0)
    try:
        result = invoke("status", str(detached.parent))
        collected = invoke("collect", str(detached.parent))
        assert not hung_returned.is_set()  # both answered while the hung poll was still waiting
    finally:
        release.set()
    rows = {r.split()[0]: r.split(maxsplit=6) for r in result.stdout.splitlines()[1:]}
    assert rows[detached.name][1] == "running" and rows[hung.name][1] == "unknown", result.stdout
    assert rows[hung.name][-1].endswith("Modal did not answer within 1 s; the run is unchanged (last known "
                                        "state: detached): ask again")
    assert collected.exit_code == 1 and f"{hung.name}: Modal did not answer within 1 s" in collected.stdout
