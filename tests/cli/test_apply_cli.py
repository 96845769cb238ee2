"""`megaspec apply / collect / receipts` through click's CliRunner: exit codes and what people read.

Nothing here trains: runs are prepared as files (manifest + receipt), the way apply leaves them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.runs import manifest as mf
from tests.unit.test_manifest import CRASH, make_manifest, make_receipt

RUN_ID = "tiny-cpu-20260102-030405-abcd"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def finished_run(runs_dir, state: str = "ok", backend: str = "local", receipt: dict | None = None):
    run_dir = runs_dir / RUN_ID
    m = mf.advance(make_manifest("running", backend), state, now="2026-01-02T03:05:00Z",
                   receipt="receipt.json", error=None if state == "ok" else mf.triage_error(
                       mf.parse_receipt(receipt or make_receipt("error", CRASH))))
    mf.write_manifest(run_dir, m)
    (run_dir / "receipt.json").write_text(json.dumps(receipt or make_receipt(state, None if state == "ok" else CRASH)))
    return run_dir


@pytest.fixture
def no_modal_credentials(monkeypatch):
    import modal.config

    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setattr(modal.config, "_user_config", {})


def test_apply_spec_with_errors_exits_1_with_concise_diagnostics(tmp_path):
    spec = tmp_path / "bad.yaml"
    shutil.copy("specs/cpu-local.yaml", spec)
    spec.write_text(spec.read_text().replace("micro_batch: 4 ", "micro_batch: 5 "))
    # `--build-dir`: the hidden former name of `-o`, still accepted
    result = invoke("apply", str(spec), "--runs-dir", str(tmp_path / "runs"), "--build-dir", str(tmp_path / "b"))
    assert result.exit_code == 1
    assert f"{spec.as_posix()}:" in result.stderr and "error[MS2" in result.stderr
    assert "has errors; nothing was launched" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "b").exists()


def test_apply_modal_without_credentials_is_a_hint_not_a_traceback(tmp_path, no_modal_credentials):
    result = invoke("apply", "specs/h100-smoke.yaml", "--runs-dir", str(tmp_path / "runs"),
                    "-o", str(tmp_path / "build"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Modal credentials not found")
    assert "= help: Run `modal token new`" in result.stderr and "--target local" in result.stderr
    assert (tmp_path / "build" / "dense-125m-h100-smoke" / "app.py").is_file()
    assert not (tmp_path / "runs").exists()  # nothing was launched, so no manifest claims otherwise


def test_collect_finished_run_is_a_no_op_that_prints_the_receipt(tmp_path, no_modal_credentials):
    run_dir = finished_run(tmp_path, "ok", "modal")
    before = (run_dir / "manifest.json").read_bytes()
    result = invoke("collect", str(run_dir))
    assert result.exit_code == 0
    assert result.output.startswith("status: ok") and f"receipt: {run_dir / 'receipt.json'}" in result.output
    assert (run_dir / "manifest.json").read_bytes() == before


def test_collect_failed_run_exits_1_with_the_typed_error(tmp_path):
    run_dir = finished_run(tmp_path, "error", "modal")
    result = invoke("collect", str(run_dir))
    assert result.exit_code == 1
    assert "MS802             rank 1, stage train, step 7: RuntimeError: boom" in result.output
    assert "error file        runs/x/logs/1/error.json" in result.output


@pytest.mark.parametrize("verb", ["collect", "cancel"])
def test_pending_run_without_credentials_says_how_to_log_in(tmp_path, no_modal_credentials, verb):
    m = mf.advance(make_manifest("planned", "modal"), "detached", modal=mf.ModalCall(function_call_id="fc-1"))
    mf.write_manifest(tmp_path, m)
    result = invoke(verb, str(tmp_path))
    assert result.exit_code == 1 and "Modal credentials not found" in result.stderr
    assert "--target local" not in result.stderr  # rehearsing locally is advice for apply, not for this run
    assert mf.read_manifest(tmp_path) == m


def test_collect_needs_runs(tmp_path):
    result = invoke("collect", str(tmp_path))
    assert result.exit_code == 1
    assert f"no runs under `{tmp_path}` (no */manifest.json)" in result.stderr


def test_cancel_a_finished_run_says_so(tmp_path):
    mf.write_manifest(tmp_path, mf.advance(make_manifest("running", "modal"), "ok"))
    result = invoke("cancel", str(tmp_path))
    assert result.exit_code == 0 and "already ended `ok`; nothing to cancel" in result.output


def test_receipts_show_prints_sections_for_people(tmp_path):
    run_dir = finished_run(tmp_path, "error")
    result = invoke("receipts", "show", str(run_dir))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"run {RUN_ID}  [train lane]  status: ERROR"
    for heading in ("hardware", "provenance", "error"):
        assert heading in lines
    assert "  look first at     remote execution: read the named rank's error file first; peers only report its " \
           "absence" in lines


def test_receipts_show_json_is_the_stored_file(tmp_path):
    run_dir = finished_run(tmp_path, "ok")
    result = invoke("receipts", "show", str(run_dir / "receipt.json"), "--json")
    assert result.exit_code == 0 and result.output == (run_dir / "receipt.json").read_text()


def test_receipts_show_without_receipt_points_at_collect(tmp_path):
    m = mf.advance(make_manifest("planned", "modal"), "detached", modal=mf.ModalCall(function_call_id="fc-1"))
    mf.write_manifest(tmp_path, m)
    result = invoke("receipts", "show", str(tmp_path))
    assert result.exit_code == 1 and "has no receipt yet (state: detached)" in result.stderr
    assert f"megaspec collect {tmp_path}" in result.stderr


def test_receipts_show_rejects_another_schema_version(tmp_path):
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps({**make_receipt(), "schema_version": "megaspec.receipt.v0"}))
    result = invoke("receipts", "show", str(path))
    assert result.exit_code == 1 and "receipt schema_version is 'megaspec.receipt.v0'" in result.stderr


def test_receipts_list_prints_one_line_per_run(tmp_path):
    finished_run(tmp_path, "ok")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "manifest.json").write_text("{}")
    result = invoke("receipts", "list", str(tmp_path))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["RUN", "STATE", "BACKEND", "LANE", "TOKENS/S", "FINAL", "LOSS", "COMPLETED", "(UTC)"]
    assert lines[1].startswith("junk") and "unreadable: " in lines[1]
    assert lines[2].split()[:4] == [RUN_ID, "ok", "local", "train"]
    assert lines[2].index(" ok ") == lines[0].index(" STATE ")  # the columns line up under the header


def test_progress_plain_lines_off_a_terminal():
    import io

    from megaspec.compiler.runs.progress import ProgressDisplay

    out = io.StringIO()
    display = ProgressDisplay(40, stream=out)  # a StringIO is not a TTY: one plain line per event
    display({"step": 12, "loss": 5.43219, "tokens_per_s": 3512.4, "eta_s": 67})
    display({"phase": "compile"})
    display({"step": None})
    display.close()
    assert out.getvalue() == "step 12/40  loss 5.4322  3,512 tok/s  ETA 1:07\ncompile\n"


def test_progress_live_line_is_rewritten_in_place_and_closed():
    import io

    from megaspec.compiler.runs.progress import ProgressDisplay

    out = io.StringIO()
    display = ProgressDisplay(40, stream=out, live=True)
    display({"step": 1, "eta_s": None})
    display({"step": 2, "loss": 1.0, "eta_s": 3725})
    display.close()
    assert out.getvalue() == "\r\x1b[Kstep 1/40  ETA --:--\r\x1b[Kstep 2/40  loss 1.0000  ETA 1:02:05\n"


def test_status_detail_names_the_receipt_file_where_it_is(tmp_path):
    run_dir = finished_run(tmp_path, "ok")
    result = invoke("status", str(tmp_path))
    assert result.exit_code == 0 and f"receipt: {(run_dir / 'receipt.json').as_posix()}" in result.output


def test_receipts_list_of_an_empty_directory_says_so(tmp_path):
    result = invoke("receipts", "list", str(tmp_path))
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == f"no runs under `{tmp_path}`\n"


def test_receipts_list_sorts_by_launch_time_not_by_name(tmp_path):
    for name, launched in (("a-run", "2026-03-01T00:00:00Z"), ("b-run", "2026-01-01T00:00:00Z")):
        m = make_manifest("running", "modal").model_copy(update={
            "run_id": name, "transitions": [mf.Transition(state="running", at=launched)]})
        mf.write_manifest(tmp_path / name, m)
    result = invoke("receipts", "list", str(tmp_path))
    assert [line.split()[0] for line in result.output.splitlines()] == ["RUN", "b-run", "a-run"]


def test_a_local_run_whose_tracker_is_not_installed_is_refused_before_it_trains(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    # A fake, and the only one here: wandb is installed in the test environment, so its absence is
    # simulated where apply looks for it.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    spec = tmp_path / "tracked.yaml"
    spec.write_text(Path("specs/cpu-local.yaml").read_text() + "tracking: {wandb: {project: p}}\n")
    result = invoke("apply", str(spec), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "build"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr == ("error: `tracking` asks for `wandb`, not installed here; nothing was run\n"
                             "  = help: pip install 'megaspec[tracking]', or turn the tracker off in `tracking:`\n")
    assert not any((tmp_path / "runs").rglob("progress.jsonl"))


def test_a_local_require_seed_run_without_its_seed_fails_ms807_before_the_fork_server_starts(tmp_path, monkeypatch):
    from megaspec.runtime.launch import fork_server

    spec = (Path(__file__).resolve().parents[2] / "examples" / "seed" / "cpu-compile.yaml").read_text()
    (tmp_path / "spec.yaml").write_text(spec.replace("/tmp/megaspec-seeds/tiny-cpu-compile", str(tmp_path / "no-seed")))
    started: list[str] = []
    monkeypatch.setattr(fork_server, "start_fork_server", lambda *a, **k: started.append("fork server"))
    result = invoke("apply", str(tmp_path / "spec.yaml"), "--runs-dir", str(tmp_path / "runs"), "-o",
                    str(tmp_path / "build"), "--no-progress")
    [run_dir] = (tmp_path / "runs").iterdir()
    m = mf.read_manifest(run_dir)
    assert result.exit_code == 1 and started == []  # refused before the fork server (and torch) start
    assert (m.state, m.error.stage) == ("error", "bootstrap") and m.error.message.startswith("MS807: ")
    assert "`megaspec cache seed SPEC`" in result.output
