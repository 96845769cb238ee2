"""The generated Modal app's file discipline, without Modal: when it commits its Volumes, which paths each
node writes, and a clustered app's rendezvous outside a cluster (it fails at once instead of every node
taking itself for node 0 and waiting out the init timeout)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from megaspec.compiler.codegen.lower import lower
from megaspec.compiler.codegen.render import render
from megaspec.compiler.spec.model import Spec
from megaspec.runtime.contract.checkpoint_dirs import step_dir
from megaspec.runtime.launch.volume_commits import VolumeCommits, node_cache_env


def checkpointing_plan(root: Path):
    spec = {"megaspec": 1, "name": "two-nodes", "resources": {"gpu": "H100:8", "nodes": 2}, "checkpoint": {"every": 2}}
    plan = lower(Spec.model_validate(spec), spec_path="gen.yaml", spec_sha256="0" * 64, origins={})
    return plan.model_copy(update={"checkpoint": plan.checkpoint.model_copy(update={"dir": str(root)})})


def complete(root: Path, step: int) -> None:
    folder = step_dir(root, step)
    folder.mkdir(parents=True)
    (folder / ".metadata").write_bytes(b"")


def test_a_commit_follows_each_newly_complete_checkpoint_once(tmp_path):
    root, commits = tmp_path / "ckpt", []
    volume = VolumeCommits(checkpointing_plan(root), tmp_path / "run", lambda: commits.append(1))
    volume.on_event({"step": 1})
    assert commits == []
    (root / ".tmp-step-2").mkdir(parents=True)  # being written: not yet
    volume.on_event({"step": 2})
    assert commits == []
    complete(root, 2)
    volume.on_event({"step": 2})
    volume.on_event({"step": 3})
    assert commits == [1]
    complete(root, 4)
    volume.on_event({"step": 4})
    assert commits == [1, 1] and volume.committed_step == 4


def test_only_node_0_compiles_into_the_shared_cache(tmp_path):
    shared = tmp_path / "cache"
    (shared / "fxgraph").mkdir(parents=True)
    (shared / "fxgraph" / "entry").write_text("warm")
    env = {"TORCHINDUCTOR_CACHE_DIR": str(shared), "TRITON_CACHE_DIR": f"{shared}/triton"}
    assert node_cache_env(env, 0) == {}
    own = node_cache_env(env, 1)
    inductor = Path(own["TORCHINDUCTOR_CACHE_DIR"])
    assert not inductor.is_relative_to(shared) and (inductor / "fxgraph" / "entry").read_text() == "warm"
    assert own["TRITON_CACHE_DIR"] == str(inductor / "triton")
    assert node_cache_env({}, 1) == {}  # no compile cache planned: nothing to move


def test_a_clustered_apps_rendezvous_outside_a_cluster_fails_at_once(tmp_path, monkeypatch):
    import modal

    plan = checkpointing_plan(tmp_path / "ckpt")
    path = tmp_path / "app.py"
    path.write_text(render(plan)["app.py"])
    spec = importlib.util.spec_from_file_location("megaspec_clustered_app", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module._rendezvous() == (0, None)  # `run.local()`: the only node
    monkeypatch.setattr(modal, "is_local", lambda: False)  # a container Modal made no cluster for
    with pytest.raises(Exception) as raised:
        module._rendezvous()
    assert isinstance(raised.value, modal.exception.Error)
