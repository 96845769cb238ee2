"""Secrets are named, never carried: values planted in the environment reach no artifact or output."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from tests.conftest import REPO_ROOT

PLANTED = {
    "WANDB_API_KEY": "wandb-planted-4f9c2e7a1b3d5f60",
    "AWS_SECRET_ACCESS_KEY": "aws-planted-Zq8+Lm2/Xy7Kp4Rt9Vb6Nc1",
    "AWS_ACCESS_KEY_ID": "AKIAPLANTED7EXAMPLE9",
    "MODAL_TOKEN_ID": "ak-planted-token-id-91c3",
    "MODAL_TOKEN_SECRET": "as-planted-token-secret-6d2e",
    "HF_TOKEN": "hf_plantedTokenValue0123456789",
}


def test_no_planted_secret_in_artifacts_or_output(monkeypatch, tmp_path: Path):
    for key, value in PLANTED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(REPO_ROOT)
    runner = CliRunner()
    outputs = [runner.invoke(cli, ["compile", "specs", "-o", str(tmp_path)]).output]
    for spec in sorted((REPO_ROOT / "specs").glob("[!_]*.yaml")):
        rel = spec.relative_to(REPO_ROOT).as_posix()
        outputs += [runner.invoke(cli, ["plan", rel]).output, runner.invoke(cli, ["plan", rel, "--json"]).output]
    artifacts = [p.read_text(encoding="utf-8") for p in tmp_path.rglob("*") if p.is_file()]
    runs = sorted((REPO_ROOT / "specs").glob("[!_]*.yaml"))
    assert len(artifacts) == 2 * len(runs) and all(outputs)  # app.py and plan.json of every spec
    for text in outputs + artifacts:
        for value in PLANTED.values():
            assert value not in text
    # names are fine where the spec asked for them: bucket secrets appear by name only
    assert any("aws-ro" in text for text in artifacts)
