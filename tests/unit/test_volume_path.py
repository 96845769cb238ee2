"""Where a Modal run folder's file is on its Volume (`modal_volume.volume_path`): the run folder the
generated app uses (`rundir.run_dir_in`), below the Volume mount it lies under (mounts never nest: MS403)."""

from __future__ import annotations

import pytest

from megaspec.compiler.runs.backends.modal_volume import volume_path
from tests.runtime.conftest import make_plan


def run_folder(tmp_path, runs_dir: str, volumes: dict, run_id: str | None = "r-1"):
    plan = make_plan(volumes=volumes, plan={"run": {"run_id": run_id}, "modal": {"runs_dir": runs_dir}})
    (tmp_path / "plan.json").write_text(plan.to_json())
    return tmp_path


@pytest.mark.parametrize(("runs_dir", "volumes", "expected"), [
    ("/vol/ckpt/megaspec-runs", {"checkpoints": {"name": "ck", "mount": "/vol/ckpt"}},
     ("ck", "megaspec-runs/r-1/progress.jsonl")),
    ("/vol/ckpt/", {"checkpoints": {"name": "ck", "mount": "/vol/ckpt/"}}, ("ck", "r-1/progress.jsonl")),
    ("/vol/cache/megaspec-runs", {"checkpoints": {"name": "ck", "mount": "/vol/ckpt"},
                                  "cache": {"name": "cc", "mount": "/vol/cache"}}, ("cc", "megaspec-runs/r-1/progress.jsonl")),
    ("/vol/ckpt-other/runs", {"checkpoints": {"name": "ck", "mount": "/vol/ckpt"}}, None),  # a prefix is no parent
    ("/tmp/megaspec-runs", {}, None),  # in the container only
])
def test_a_run_folder_file_is_on_the_volume_it_lies_under(tmp_path, runs_dir, volumes, expected):
    assert volume_path(run_folder(tmp_path, runs_dir, volumes), "progress.jsonl") == expected


def test_a_plan_without_a_run_id_is_in_the_folder_of_its_name(tmp_path):
    folder = run_folder(tmp_path, "/vol/ckpt/runs", {"checkpoints": {"name": "ck", "mount": "/vol/ckpt"}}, None)
    assert volume_path(folder, "receipt.json") == ("ck", "runs/tiny-cpu/receipt.json")
