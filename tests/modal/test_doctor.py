"""`megaspec doctor` and the check a Modal sweep's apply runs first, through the real client and the test server."""

from __future__ import annotations

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from tests.modal.test_sweep_modal import TEMPLATE


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_doctor_names_a_missing_secret_and_passes_once_it_exists(mock):
    import modal

    result = invoke("doctor", "specs/h100-smoke.yaml")  # its bucket mount names Secret `aws-ro`
    assert result.exit_code == 1, result.output
    assert "ok    credentials: accepted (workspace `test-workspace`" in result.stdout
    assert "FAIL  Secret `aws-ro`: not found" in result.stdout and "`modal secret create aws-ro" in result.stdout
    assert "ok    Volume `ms-ckpt`: not there yet: the first launch creates it" in result.stdout
    modal.Secret.objects.create("aws-ro", {"AWS_ACCESS_KEY_ID": "x"})
    result = invoke("doctor", "specs/h100-smoke.yaml")
    assert result.exit_code == 0 and "ok    Secret `aws-ro`: exists" in result.stdout, result.output


def test_doctor_names_an_environment_that_does_not_exist(mock, monkeypatch):
    monkeypatch.setenv("MODAL_ENVIRONMENT", "nope")  # the server knows `main` only
    result = invoke("doctor", "specs/h100-smoke.yaml")
    assert result.exit_code == 1 and "FAIL  environment `nope`: not in this workspace (it has: main)" in \
        result.stdout, result.output
    assert "`modal environment create nope`" in result.stdout


def test_a_sweep_with_a_missing_secret_is_refused_before_any_build(mock, tmp_path):
    template = tmp_path / "t.yaml"
    template.write_text(TEMPLATE + "secrets: [wandb-key]\n")
    calls_before = len(mock.state()["function_calls"])
    result = invoke("apply", str(template), "--runs-dir", str(tmp_path / "runs"), "-o", str(tmp_path / "b"), "--yes")
    assert result.exit_code == 1 and "doctor: FAIL  Secret `wandb-key`: not found" in result.stderr, result.output
    assert f"`megaspec doctor {template}` checks again" in result.stderr
    assert not (tmp_path / "runs").exists() and len(mock.state()["function_calls"]) == calls_before
    assert "FunctionCreate" not in mock.state()["rpcs"][-20:]
