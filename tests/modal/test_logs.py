"""`megaspec logs`: a local run's per-rank files, and a Modal run's logs through the real client."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.local_process import this_process
from tests.modal.test_lifecycle import detached  # noqa: F401 - fixture
from tests.unit.test_manifest import make_manifest


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def local_run_with_logs(run_dir, state: str = "running"):
    m = mf.advance(make_manifest("planned", "local"), "running", process=this_process())
    mf.write_manifest(run_dir, m if state == "running" else mf.advance(m, state))
    for attempt, text in (("attempt_0", "old attempt\n"), ("attempt_1", None)):
        for rank in (0, 1):
            d = run_dir / "logs" / "tiny_abc" / attempt / str(rank)
            d.mkdir(parents=True)
            (d / "stdout.log").write_text(text or f"step 1 from {rank}\nstep 2 from {rank}\n")
            (d / "stderr.log").write_text("" if rank else "a warning\n")
    return run_dir


def test_local_logs_are_the_latest_attempt_rank_by_rank_with_prefixes(tmp_path):
    run_dir = local_run_with_logs(tmp_path, "ok")
    result = invoke("logs", str(run_dir))
    assert result.exit_code == 0
    assert result.output.splitlines() == ["[rank 0] step 1 from 0", "[rank 0] step 2 from 0", "[rank 0] a warning",
                                          "[rank 1] step 1 from 1", "[rank 1] step 2 from 1"]


def test_following_a_local_run_prints_new_lines_and_ends_with_the_run(tmp_path, monkeypatch):
    from megaspec.compiler.runs import logs

    run_dir = local_run_with_logs(tmp_path)
    log = run_dir / "logs" / "tiny_abc" / "attempt_1" / "1" / "stdout.log"
    waits: list[float] = []

    def finish_on_the_first_wait(seconds: float) -> None:
        """The run writes and ends once the follower has shown what was there and waits for more."""
        waits.append(seconds)
        if len(waits) == 1:
            with log.open("a") as f:
                f.write("step 3 from 1\npartial")
            mf.write_manifest(run_dir, mf.advance(mf.read_manifest(run_dir), "ok"))

    monkeypatch.setattr(logs, "time", SimpleNamespace(sleep=finish_on_the_first_wait))
    result = invoke("logs", str(run_dir), "-f")
    assert result.exit_code == 0 and len(waits) == 1
    assert result.stdout.index("[rank 1] step 2 from 1") < result.stdout.index("[rank 1] step 3 from 1")
    assert "[rank 1] step 3 from 1" in result.stdout and "partial" not in result.stdout
    assert result.stderr.endswith("run ended: ok\n")


@pytest.mark.parametrize("follow", [[], ["-f"]])
def test_modal_logs_go_through_the_client_and_fail_clearly(mock, detached, follow):  # noqa: F811 - fixture
    # The test server implements neither log fetching (AppFetchLogs) nor the call-status RPC that
    # ends a stream (FunctionCallGetInfo): the real client reaches it, and its refusal is said plainly.
    result = invoke("logs", str(detached), *follow)
    assert result.exit_code == 1 and "error: Modal's log service failed for `fc-" in result.stderr
    assert "UnimplementedError" in result.stderr and "`modal app logs ap-" in result.stderr
    assert "Traceback" not in result.output


class LogsOnly:
    """Stands in for the log RPCs the test server lacks (see above): entries as Modal's client types them."""

    def __init__(self, messages):
        from modal.types import LogEntry

        self.entries = [LogEntry(message=m, timestamp=datetime.now(timezone.utc), source="stdout", object_id="fc-1",
                                 context_ids=[]) for m in messages]
        self.asked = []

    def tail(self, entries):
        self.asked.append(("tail", entries))
        return iter(self.entries)

    def stream(self):
        self.asked.append(("stream",))
        return iter(self.entries)


@pytest.mark.parametrize(("follow", "asked"), [([], ("tail", 500)), (["-f"], ("stream",))])
def test_modal_log_entries_are_printed_as_modal_sends_them(mock, detached, monkeypatch, follow, asked):  # noqa: F811
    import modal

    logs = LogsOnly(["step 1 loss 5.5\n", "step 2 loss 5.1\n"])
    monkeypatch.setattr(modal.FunctionCall, "from_id", lambda call_id: SimpleNamespace(logs=logs))
    result = invoke("logs", str(detached), *follow)
    assert result.exit_code == 0 and result.stdout == "step 1 loss 5.5\nstep 2 loss 5.1\n"
    assert logs.asked == [asked]


def test_the_tail_of_a_modal_runs_logs_is_bounded_and_says_what_it_waited_for(mock, detached, monkeypatch):
    from megaspec.compiler.runs.backends import modal_client

    monkeypatch.setattr(modal_client, "ANSWER_TIMEOUT_S", 0.5)  # 20 s in use
    mock.set("rpc_hang.txt", "AppFetchLogs")  # taken, never answered
    result = CliRunner().invoke(cli, ["logs", str(detached)], catch_exceptions=False)
    assert result.exit_code == 1 and "Modal did not answer the last 500 log entries of `fc-" in result.stderr, \
        result.output


def test_a_local_run_resumed_in_its_folder_names_its_earlier_attempts_logs_which_still_read(tmp_path):
    from megaspec.runtime.contract.rundir import archive_previous_attempt

    run_dir = local_run_with_logs(tmp_path / "run", "interrupted")
    archive_previous_attempt(run_dir, extra=(mf.MANIFEST_FILE,))  # as `apply --resume` does before attempt 2
    local_run_with_logs(run_dir, "ok")
    (run_dir / "logs" / "tiny_abc" / "attempt_1" / "0" / "stdout.log").write_text("attempt 2 from 0\n")
    current = invoke("logs", str(run_dir))
    assert current.exit_code == 0 and f"`megaspec logs {run_dir / 'attempts' / '1'}`" in current.stderr
    assert "[rank 0] attempt 2 from 0" in current.stdout and "step 1 from 0" not in current.stdout
    earlier = invoke("logs", str(run_dir / "attempts" / "1"))
    assert earlier.exit_code == 0 and "[rank 0] step 1 from 0" in earlier.stdout, earlier.output
