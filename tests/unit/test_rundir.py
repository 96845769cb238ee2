"""The run folder has one owner: `runtime/contract/rundir.py` spells each file's name, everyone else
asks it; the readers of its files tolerate what a killed run leaves behind."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
from pathlib import Path

import pytest

from megaspec.compiler.runs.local_process import last_recorded
from megaspec.runtime.contract import rundir
from megaspec.runtime.contract.progress import read_events
from megaspec.runtime.contract.rank_status import read_statuses

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [p for part in ("compiler", "runtime") for p in sorted((ROOT / part).rglob("*.py"))]
TEMPLATES = sorted((ROOT / "compiler").rglob("*.j2"))
NAMES = (rundir.RECEIPT_FILE, rundir.PLAN_FILE, rundir.MANIFEST_FILE, rundir.PROGRESS_FILE)
# Another folder's file of the same name: a prepared data folder's `manifest.json` (`megaspec data prepare`).
OTHER_FOLDERS = {"runtime/contract/shards.py", "compiler/commands/data.py"}


def code_strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal of a module except docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("name", NAMES)
def test_each_run_folder_file_is_spelled_once_in_product_code(name):
    sites = [f"{p.relative_to(ROOT)}:{line}" for p in PRODUCT if str(p.relative_to(ROOT)) not in OTHER_FOLDERS
             for line, text in code_strings(p) if name in text]
    sites += [f"{p.relative_to(ROOT)}" for p in TEMPLATES if name in p.read_text(encoding="utf-8")]
    assert sites == [f"runtime/contract/rundir.py:{_line_of(name)}"], sites


def _line_of(name: str) -> int:
    text = (ROOT / "runtime/contract/rundir.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(text, 1) if f'= "{name}"' in line)


def test_the_run_id_fallback_is_written_once():
    """`run_id_of` (the id of a run folder) and `run_dir_in` (the Modal app's run folder), nowhere else."""
    pattern = re.compile(r"run\.run_id or ")
    sites = [f"{p.relative_to(ROOT)}:{i}" for p in (*PRODUCT, *TEMPLATES)
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert {s.split(":")[0] for s in sites} == {"runtime/contract/rundir.py"}, sites


def test_progress_events_skip_what_a_kill_leaves(tmp_path):
    path = tmp_path / rundir.PROGRESS_FILE
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo\n[1, 2]\n{"step": 3, "loss": 1.5}\n{"step": 4')
    events, offset = read_events(path)
    assert [e["step"] for e in events] == [1, 3]
    assert offset == len(path.read_text()) - len('{"step": 4')  # the half-written line waits


def test_an_orphan_says_what_its_progress_and_rank_files_recorded(tmp_path):
    (tmp_path / rundir.PROGRESS_FILE).write_text('{"step": 4, "loss": 1.0}\nnot json\n{"step": 5, "los')
    for rank, fields in ((0, {"phase": "train", "last_step": 4}), (1, {"phase": "checkpoint"})):
        path = rundir.rank_status_file(tmp_path, rank)
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"rank": rank, "pid": os.getpid(), "host": socket.gethostname(), **fields}))
    rundir.rank_status_file(tmp_path, 2).write_text('{"rank": 2, "pha')  # killed mid-write
    assert last_recorded(tmp_path) == ("last step recorded: 4; rank 0 in `train` at step 4; "
                                       "rank 1 in `checkpoint` at step 0")
    assert sorted(read_statuses(tmp_path)) == [0, 1]


def test_a_modal_run_folder_is_named_by_its_run_id_else_its_plan(tmp_path):
    from tests.runtime.conftest import make_plan

    plan = make_plan()
    assert plan.run.run_id is None
    folder = rundir.run_dir_in("/vol/runs", plan)
    assert folder == f"/vol/runs/{plan.name}" and rundir.run_id_of(plan, folder) == plan.name
    named = plan.model_copy(update={"run": plan.run.model_copy(update={"run_id": "r-1"})})
    assert rundir.run_id_of(named, rundir.run_dir_in("/vol/runs", named)) == "r-1"


def test_an_attempt_is_archived_with_the_files_the_caller_rewrites_copied_not_moved(tmp_path):
    (tmp_path / rundir.MANIFEST_FILE).write_text("attempt 1's manifest")
    (tmp_path / rundir.RECEIPT_FILE).write_text("attempt 1's receipt")
    (tmp_path / rundir.CHECKPOINTS_DIR).mkdir()
    archive = rundir.archive_previous_attempt(tmp_path, copied=(rundir.MANIFEST_FILE,))
    assert archive == tmp_path / rundir.ATTEMPTS_DIR / "1" and rundir.archived_attempts(tmp_path) == 1
    assert (archive / rundir.MANIFEST_FILE).read_text() == (tmp_path / rundir.MANIFEST_FILE).read_text()
    assert (archive / rundir.RECEIPT_FILE).is_file() and not (tmp_path / rundir.RECEIPT_FILE).exists()
    assert (tmp_path / rundir.CHECKPOINTS_DIR).is_dir()  # what the next attempt resumes from stays
    assert rundir.archive_previous_attempt(tmp_path, copied=(rundir.MANIFEST_FILE,)).name == "2"
    assert rundir.archive_previous_attempt(tmp_path / "empty") is None
