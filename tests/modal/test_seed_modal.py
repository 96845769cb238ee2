"""`megaspec cache seed` of a Modal spec, through the real `modal` client and Modal's own test server.

The CLI writes the one-GPU seeding app, launches it detached, spawns its `seed` function with the
plan and waits for the result: the server's answer (a seed manifest, a failure, a refused
creation, rejected tokens) decides what the user reads. The function itself never runs on the
server; tests/test_seed_app.py runs it through `.local()`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.lint.check import check_spec
from megaspec.runtime.contract.seed_file import SeedManifest, key_for
from tests.conftest import REPO_ROOT
from tests.modal.conftest import point_client_at, put_on_volume

# The README's flagship (`require-seed` on 8 x H200) on A100-80GB: the test server's list of GPU
# types (VALID_GPU_TYPES in its conftest) predates the H200 and refuses it at function creation.
# tests/test_seed_app.py checks the H200 app itself, offline.
GPU = "A100-80GB"


def project(tmp_path) -> str:
    """specs/h200x8.yaml and its base, on A100-80GB, in a project of their own; the spec's path."""
    for name in ("h200x8.yaml", "_base.yaml"):
        (tmp_path / name).write_text((REPO_ROOT / "specs" / name).read_text().replace("H200:8", f"{GPU}:8"))
    return str(tmp_path / "h200x8.yaml")


def seed(tmp_path, *extra: str):
    return CliRunner().invoke(cli, ["cache", "seed", project(tmp_path), "-o", str(tmp_path / "build"), *extra],
                              catch_exceptions=False)


def manifest_of_a_seed_made_on_an_a100(tmp_path) -> dict:
    key = key_for(plan_for(check_spec(project(tmp_path))), "NVIDIA A100-SXM4-80GB").model_copy(
        update={"torch": "2.8.0"})
    return SeedManifest(key=key, created_at="2026-12-01T00:00:00Z", compile_s=94.2, artifacts_bytes=3_145_728,
                        inductor_files=412).model_dump(mode="json")


def test_seeding_spawns_the_one_gpu_app_and_prints_the_seed(mock, tmp_path):
    mock.set("result.json", json.dumps(manifest_of_a_seed_made_on_an_a100(tmp_path)))
    result = seed(tmp_path)
    assert result.exit_code == 0, result.output
    app_py = tmp_path / "build" / "dense-1b-h200x8-seed" / "app.py"
    assert app_py.is_file() and f"gpu='{GPU}'" in app_py.read_text()
    assert result.stderr.startswith(f"cache seed: compiling dense-1b-h200x8 on one {GPU} on Modal -> /vol/cache/seed "
                                    f"on Volume `ms-compile-cache` (app {app_py.as_posix()})\n")
    assert "Created Function seed." in result.output  # Modal's own build and creation output is shown
    call_id = next(line.split()[1] for line in result.stderr.splitlines() if line.startswith("seeding: fc-"))
    assert result.stdout.endswith(
        "seed: /vol/cache/seed on Volume `ms-compile-cache`\n"
        "  built for: torch 2.8.0, NVIDIA A100-SXM4-80GB, 16 layers x d_model 2048, micro_batch 4 x seq_len 2048, bf16, "
        "activation_checkpointing selective\n"
        "  compile: 94.2 s; 412 cache files, 3,145,728 bytes of torch cache artifacts\n"
        "  a run with `cache.policy: require-seed` and this `cache.seed` restores it before compiling\n")
    state = mock.state()
    assert "FunctionMap" in state["rpcs"] and call_id in state["function_calls"]


def test_a_seeding_call_that_fails_says_where_to_read_why(mock, tmp_path):
    mock.set("error.txt", "torch.OutOfMemoryError: CUDA out of memory")
    result = seed(tmp_path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "error: the seed was not made on Modal: " in result.stderr and "CUDA out of memory" in result.stderr
    assert "= help: Read its output with `modal app logs ap-" in result.stderr
    assert "seed: /vol/cache/seed" not in result.stdout


def test_a_refused_function_creation_is_a_launch_error(mock, tmp_path):
    mock.set("fail_create.txt", "gpu type not allowed in this workspace")
    result = seed(tmp_path)
    assert result.exit_code == 1 and "error: the seeding app could not be launched: " in result.stderr
    assert "gpu type not allowed in this workspace" in result.stderr and "seeding: fc-" not in result.stderr


def test_rejected_credentials_are_said_before_anything_is_spawned(mock, tmp_path, monkeypatch):
    point_client_at(monkeypatch, mock.url, tmp_path / "home", {"MODAL_TOKEN_ID": "ak-revoked",
                                                               "MODAL_TOKEN_SECRET": "as-mock"})
    result = seed(tmp_path)
    assert result.exit_code == 1 and "error: Modal rejected the credentials" in result.stderr
    assert "`modal token new`" in result.stderr and "seeding: fc-" not in result.stderr


def test_without_the_modal_client_the_fix_is_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "modal", None)  # `import modal` now fails as if not installed
    result = seed(tmp_path)
    assert result.exit_code == 2 and "pip install 'megaspec[modal]'" in result.stderr
    assert "--target local" not in result.stderr  # `apply`'s CPU rehearsal makes no seed for Modal


def test_without_credentials_the_fix_is_a_token(mock, tmp_path, monkeypatch):
    point_client_at(monkeypatch, mock.url, tmp_path / "home", {})
    for key in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(key, raising=False)
    result = seed(tmp_path)
    assert result.exit_code == 1 and "error: Modal credentials not found" in result.stderr
    assert "`modal token new`" in result.stderr and "--target local" not in result.stderr


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM"),
                                             (signal.SIGHUP, "SIGHUP")])
def test_a_signal_while_waiting_leaves_the_seed_compiling_and_says_how_to_stop_it(mock, tmp_path, signum, name):
    """A real signal to a real `megaspec` process (the wait blocks in the client, where only a signal
    reaches it), sent once the call is spawned and left pending by the server."""
    command = [str(Path(sys.executable).parent / "megaspec"), "cache", "seed", project(tmp_path),
               "-o", str(tmp_path / "build")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines = []
        while not any(line.startswith("waiting for the compile") for line in lines):
            line = proc.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert f"error: stopped waiting ({name}); the seed is still being made on Modal (call fc-" in err
    assert "stop it with `modal app stop ap-" in err and "Traceback" not in err


def apply_modal(tmp_path, spec: str):
    return CliRunner().invoke(cli, ["apply", spec, "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b")],
                              catch_exceptions=False)


def test_a_require_seed_run_without_its_seed_is_refused_before_anything_is_spawned(mock, tmp_path):
    """The server has no `seed.json` there (nor, in a fresh session, the Volume): the real client says so."""
    result = apply_modal(tmp_path, project(tmp_path))
    [manifest] = (tmp_path / "runs").glob("*/manifest.json")
    assert result.exit_code == 1 and "detached:" not in result.output and "Created Function" not in result.output
    assert ("error[bootstrap]: MS807: `cache.policy: require-seed`, but the compile-cache seed `/vol/cache/seed` is "
            "not on Volume `ms-compile-cache` (no `seed/seed.json`); nothing was spawned. Make it first with "
            f"`megaspec cache seed {project(tmp_path)}`, then apply again") in result.stdout
    assert "look first at: the compile-cache seed: make it with `megaspec cache seed SPEC`" in result.stdout
    assert json.loads(manifest.read_text())["state"] == "error"


CPU_SEEDED = ((REPO_ROOT / "specs" / "cpu-local.yaml").read_text().replace("target: local", "target: modal")
              .replace("compile: false", "compile: true").replace("timeout: 2m", "timeout: 10m")
              + "volumes: {cache: {name: ms-seeded-cache, mount: /vol/cache}}\n"  # not the test above's (empty)
              + "cache: {policy: require-seed, seed: /vol/cache/seed}\n")  # no bucket Secret the server lacks


def test_a_require_seed_run_whose_seed_is_there_is_spawned(mock, tmp_path):
    put_on_volume("ms-seeded-cache", "seed/seed.json", b"{}")  # where `cache seed` writes it
    (tmp_path / "s.yaml").write_text(CPU_SEEDED)
    result = apply_modal(tmp_path, str(tmp_path / "s.yaml"))
    assert result.exit_code == 0 and "detached: fc-" in result.stdout, result.output


@pytest.mark.parametrize(("knob", "refused"), [(None, True),
                                               ({"VolumeGetFile2": ["PERMISSION_DENIED", "offline"]}, False)])
def test_only_a_seed_that_is_not_there_refuses_the_launch(mock, tmp_path, knob, refused):
    from megaspec.compiler.runs.backends.modal import missing_seed

    put_on_volume("ms-unseeded-cache", "elsewhere/file", b"the Volume is there, its seed is not")
    if knob:
        mock.set("rpc_status.json", json.dumps(knob))
    (tmp_path / "s.yaml").write_text(CPU_SEEDED.replace("ms-seeded-cache", "ms-unseeded-cache"))
    plan = plan_for(check_spec(str(tmp_path / "s.yaml")))
    assert (missing_seed(plan) is not None) == refused  # a Volume that cannot be read: the run checks again
