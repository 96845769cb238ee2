"""The one bounded reader (runtime/contract/files.py) every file read back from a run or sweep folder
goes through: regular files only, never through a link at the file, never blocking, a size cap per
kind, a nesting cap checked before json.loads, and an UnreadableFile naming the file otherwise."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from megaspec.compiler.runs.manifest import Manifest
from megaspec.runtime.contract import files
from megaspec.runtime.contract.files import (
    MAX_JSON_DEPTH,
    READ_CAPS,
    UnreadableFile,
    json_depth,
    read_json,
    read_tail,
)
from megaspec.runtime.contract.progress import event_or_none, read_events, read_record
from megaspec.runtime.contract.rank_status import read_statuses


def _special(path: Path, kind: str) -> Path:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dir":
        path.mkdir()
    else:
        path.symlink_to(kind)
    return path


@pytest.mark.parametrize(("kind", "reason"), [
    ("fifo", "not a regular file"), ("dir", "not a regular file"), ("/dev/stdin", "symbolic link"),
    ("/dev/zero", "symbolic link"), ("/proc/self/environ", "symbolic link"),
])
def test_a_special_file_is_refused_without_being_read(tmp_path, kind, reason):
    # a FIFO opened for reading without O_NONBLOCK would block here until a writer came
    path = _special(tmp_path / "manifest.json", kind)
    with pytest.raises(UnreadableFile, match=reason) as caught:
        read_json(path, "manifest")
    assert caught.value.path == path and str(path) in str(caught.value)


@pytest.mark.parametrize(("text", "reason"), [
    ("", "cannot be read as JSON"), ("[" * 100_000, "nests 100000 levels"),
    ('{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1), f"nests {MAX_JSON_DEPTH + 1} levels"),
    ("1" * 10_000, "cannot be read as JSON"), ("[1]", "holds a JSON list"), ("null", "holds a JSON NoneType"),
    ('{"schema_version": "megaspec.manifest.v2"}', "schema_version is 'megaspec.manifest.v2'"),
])
def test_malformed_json_is_an_unreadable_file(tmp_path, text, reason):
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(UnreadableFile, match=reason):
        Manifest.read(path)


def test_a_file_over_its_kind_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setitem(READ_CAPS, "manifest", 100)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"schema_version": "v", "pad": "x" * 100}))
    with pytest.raises(UnreadableFile, match="megaspec reads 100 at most"):
        read_json(path, "manifest")


def test_bytes_that_are_not_utf8_and_a_bom(tmp_path):
    (tmp_path / "a.json").write_bytes(b"\xff\xfe")
    with pytest.raises(UnreadableFile, match="not UTF-8"):
        read_json(tmp_path / "a.json", "manifest")
    (tmp_path / "b.json").write_bytes(b'\xef\xbb\xbf{"schema_version": "v"}')
    assert read_json(tmp_path / "b.json", "manifest") == {"schema_version": "v"}


@pytest.mark.parametrize(("text", "depth"), [
    ("{}", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "\\"[["]', 1), ("[]" * 1000, 1), ("[" * 70, 70),
])
def test_json_depth_ignores_brackets_in_strings(text, depth):
    assert json_depth(text) == depth


def test_a_log_shows_its_tail_and_a_special_log_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(READ_CAPS, "log", 10)
    log = tmp_path / "stdout.log"
    log.write_text("0123456789abcdef")
    assert read_tail(log, "log") == (6, b"6789abcdef")
    assert read_tail(log, "log", 12) == (12, b"cdef")
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_tail(_special(tmp_path / "fifo.log", "fifo"), "log")


@pytest.mark.parametrize("line", [
    "5", "null", '"x"', '{"losses": 5}', '{"losses": [[1]]}', "[1e308, -1e308]", '{"losses": [1e308, -1e308]}',
    '{"step": "x"}', '{"step": -1}', '{"losses": [true]}', '{"loss": "y"}', "[" * 100_000, "\xff",
    '{"step": 1, "at": 5}', '{"step": 1, "at": "yesterday"}', '{"step": 1, "at": "2026-01-02T03:04:05"}',
    '{"step": 1, "at": "2026-01-02T03:04:05Z\\u001b[2J"}', '{"step": 1, "at": "' + "9" * 100 + '"}',
])
def test_a_progress_line_of_the_wrong_shape_is_no_event(line):
    assert event_or_none(line.encode("utf-8", "surrogateescape")) is None


def test_progress_keeps_the_events_of_the_right_shape(tmp_path):
    good = {"step": 1, "loss": 5.0, "losses": [5.0, float("nan")], "tokens_per_s": 10.0, "eta_s": None}
    (tmp_path / "progress.jsonl").write_text(f"5\n{json.dumps(good)}\n{{\"losses\": [[1]]}}\n{json.dumps(good)}")
    events, offset = read_events(tmp_path / "progress.jsonl")
    assert len(events) == 1 and events[0]["step"] == 1  # the last line is half-written: next time
    assert offset == len(f"5\n{json.dumps(good)}\n{{\"losses\": [[1]]}}\n")


@pytest.mark.parametrize("at", ["2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05+00:00"])
def test_a_step_event_may_say_when_it_was_written(at):
    assert event_or_none(json.dumps({"step": 1, "at": at}).encode()) == {"step": 1, "at": at}


def test_an_unreadable_progress_file_proves_nothing(tmp_path):
    _special(tmp_path / "progress.jsonl", "fifo")
    assert read_record(tmp_path).losses == []


def test_rank_status_files_of_the_wrong_shape_are_skipped(tmp_path):
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    (ranks / "rank-0.json").write_text(json.dumps({"rank": 0, "phase": "train", "last_step": 3}))
    (ranks / "rank-1.json").write_text(json.dumps({"phase": "train"}))  # no rank
    (ranks / "rank-2.json").write_text(json.dumps({"rank": 2, "phase": ["x"]}))
    (ranks / "rank-3.json").write_text("[" * 100_000)
    _special(ranks / "rank-4.json", "fifo")
    assert list(read_statuses(tmp_path)) == [0]


def test_every_run_folder_reader_goes_through_the_bounded_reader():
    """No reader of a run-folder artifact opens a file itself (a grep: Path.read_text/open/json.loads)."""
    root = Path(files.__file__).resolve().parents[2]
    readers = ["compiler/runs/manifest.py", "compiler/runs/sweep_manifest.py", "compiler/runs/records.py",
               "compiler/runs/logs.py", "compiler/runs/local_process.py", "compiler/commands/receipts.py",
               "runtime/contract/receipt.py", "runtime/contract/plan.py", "runtime/contract/seed_file.py",
               "runtime/contract/rank_status.py", "runtime/contract/progress.py"]
    for name in readers:
        lines = [line for line in (root / name).read_text().splitlines() if "/proc/" not in line]
        for call in (".read_text(", ".read_bytes(", "json.loads(", " open(", ".open("):
            assert not [line for line in lines if call in line and '"a"' not in line], f"{name} reads with {call}"


def test_logs_follow_says_once_that_a_log_is_refused(tmp_path, monkeypatch):
    from megaspec.compiler.runs import logs

    monkeypatch.setattr(logs, "FOLLOW_INTERVAL_S", 0)
    rank_dir = tmp_path / "logs" / "x" / "attempt_0" / "0"
    rank_dir.mkdir(parents=True)
    (tmp_path / "elsewhere.txt").write_text("not this run's\n")
    (rank_dir / "stdout.log").symlink_to(tmp_path / "elsewhere.txt")
    (rank_dir / "stderr.log").write_text("a line\n")
    calls, said = iter([False, False, True]), []
    logs.follow_local(tmp_path, said.append, lambda: next(calls))
    assert said == [f"[rank 0] `{rank_dir / 'stdout.log'}`: it is a symbolic link; megaspec reads back only "
                    "regular files, never through a link", "[rank 0] a line"]
