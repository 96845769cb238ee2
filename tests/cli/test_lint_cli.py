"""`megaspec lint|schema|explain|rules` through click: exit codes 0/1/2/3, formats, config, output file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli, main
from megaspec.compiler.lint import check as lint_module
from tests.conftest import CLEAN_SPEC

CLEAN = CLEAN_SPEC + "resources:\n  ranks: 2\n"
BAD = CLEAN.replace("ranks: 2", "ranks: 2\n  nodes: 0")


@pytest.fixture
def specs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "clean.yaml").write_text(CLEAN)
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "warn.yaml").write_text(CLEAN.replace("ranks: 2", "ranks: 2  # megaspec: ignore[MS104]"))
    return tmp_path


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def test_clean_exits_0_and_says_all_checks_passed_in_concise(specs):
    """As ruff does: silence could also mean that no file was read."""
    result = run("lint", "specs/")
    assert (result.exit_code, result.output) == (0, "All checks passed (1 file).\n")


def test_errors_exit_1_in_concise_when_not_a_tty(specs):
    result = run("lint", "bad.yaml")
    assert result.exit_code == 1
    assert result.output.startswith("bad.yaml:9:10: error[MS104] `resources.nodes` must be at least 1, not `0`")


def test_warnings_exit_0_unless_warnings_as_errors(specs):
    assert run("lint", "warn.yaml").exit_code == 0
    assert run("lint", "--warnings-as-errors", "warn.yaml").exit_code == 1


def test_ignore_flag(specs):
    assert run("lint", "--ignore", "MS104", "bad.yaml").exit_code == 0
    assert run("lint", "--ignore", "MS2,MS1", "bad.yaml").exit_code == 0


def test_config_file_is_read_unless_no_config(specs):
    (specs / "pyproject.toml").write_text("[tool.megaspec]\nignore = ['MS104']\n")
    assert run("lint", "bad.yaml").exit_code == 0
    assert run("lint", "--no-config", "bad.yaml").exit_code == 1


def test_missing_path_is_a_usage_error(specs):
    result = run("lint", "nope.yaml")
    assert result.exit_code == 2 and "does not exist" in result.output
    assert f"looked for {specs / 'nope.yaml'}" in result.output and "Did you mean" not in result.output


def test_missing_path_suggests_the_other_yaml_suffix(specs):
    result = run("lint", "specs/clean.yml")
    assert result.exit_code == 2 and "Did you mean `specs/clean.yaml`?" in result.output


@pytest.mark.parametrize("verb", [["lint"], ["plan"], ["compile"], ["apply"], ["cache", "seed"], ["sweep"]])
@pytest.mark.parametrize(("typed", "meant"), [
    ("specs/clean.yml", "specs/clean.yaml"),  # the other suffix
    ("specs/Clean.YAML", "specs/clean.yaml"),  # another case
    ("specs/cl-ean.yml", "specs/clean.yaml"),  # a separator more
    ("specs/clen.yaml", "specs/clean.yaml"),  # a close spelling
    ("spec/clean.yaml", "specs/clean.yaml"),  # a close folder
])
def test_every_verb_suggests_the_spec_file_that_was_probably_meant(specs, verb, typed, meant):
    (specs / "specs" / "cpu-local.yaml").write_text(CLEAN)
    result = run(*verb, typed)
    assert result.exit_code == 2 and f"`{typed}` does not exist (looked for {specs / typed})." in result.output
    assert f"Did you mean `{meant}`?" in result.output, result.output


def test_separators_and_case_are_set_aside_before_spelling_is_guessed(specs):
    (specs / "specs" / "cpu-local.yaml").write_text(CLEAN)
    (specs / "specs" / "cpu-locals.yaml").write_text(CLEAN)
    result = run("plan", "specs/cpu_local.yaml")
    assert "Did you mean `specs/cpu-local.yaml`?" in result.output  # not also the merely close one


def test_directory_without_specs_is_an_error(specs):
    (specs / "bases").mkdir()
    (specs / "bases" / "_base.yaml").write_text(CLEAN)
    result = run("lint", "bases", "specs/")
    assert result.exit_code == 1
    assert result.output == ("error[MS013] `bases` holds no spec files (`*.yaml` or `*.yml` with a `megaspec:` "
                             "key, not named `_*`) [no-spec-files]\n")


def test_a_directory_yields_specs_only(specs):
    """CI workflows, hidden and installed-package trees are not specs; a file named directly always is."""
    (specs / "specs" / "compose.yaml").write_text("services: {web: {image: nginx}}\n")
    for hidden in (".github/workflows", ".venv/lib/site-packages/pkg", "node_modules/x"):
        (specs / "specs" / hidden).mkdir(parents=True)
        (specs / "specs" / hidden / "bad.yaml").write_text(BAD)
    assert run("lint", "specs/").exit_code == 0
    assert run("lint", "specs/compose.yaml").exit_code == 1
    assert run("lint", "specs/.github/workflows").exit_code == 1  # named: entered, and its spec is linted


def test_no_path_is_a_usage_error(specs):
    assert run("lint").exit_code == 2


def test_bad_format_is_a_usage_error(specs):
    assert run("lint", "--format", "xml", "bad.yaml").exit_code == 2


def test_github_format_is_automatic_in_actions(specs):
    result = run("lint", "bad.yaml", env={"GITHUB_ACTIONS": "true"})
    assert result.exit_code == 1
    assert result.output.startswith("::error title=megaspec MS104 (out-of-range),file=bad.yaml,line=9,col=10")


def test_explicit_format_wins_over_actions(specs):
    result = run("lint", "--format", "json", "bad.yaml", env={"GITHUB_ACTIONS": "true"})
    report = json.loads(result.output)
    assert [d["code"] for d in report["diagnostics"]] == ["MS104"]


def test_output_file(specs):
    result = run("lint", "--format", "sarif", "-o", "out/megaspec.sarif", "bad.yaml")
    assert (result.exit_code, result.output) == (1, "")
    sarif = json.loads((specs / "out" / "megaspec.sarif").read_text())
    assert sarif["runs"][0]["results"][0]["ruleId"] == "MS104"


def test_crashing_rule_exits_3(specs, monkeypatch):
    def boom(factory):
        raise RuntimeError("rule exploded")

    monkeypatch.setattr(lint_module, "run_rules", boom)
    result = run("lint", "--format", "concise", "specs/clean.yaml")
    assert result.exit_code == 3 and "MS902" in result.output


def test_unexpected_exception_in_main_exits_3(specs, monkeypatch, capsys):
    def boom(paths, config=None):
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(lint_module, "check_paths", boom)
    with pytest.raises(SystemExit) as exit_info:
        main(["lint", "specs/clean.yaml"])
    assert exit_info.value.code == 3
    assert "internal error[MS902]" in capsys.readouterr().err


def test_secret_never_reaches_the_output(specs):
    token = "hf_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z"
    (specs / "leak.yaml").write_text(CLEAN + f"image:\n  env:\n    HF_TOKEN: {token}\n  python: 3.11\n")
    for fmt in ("human", "concise", "json", "github", "sarif"):
        result = run("lint", "--format", fmt, "leak.yaml")
        assert result.exit_code == 1
        assert token not in result.output and token[4:] not in result.output


def test_schema_command_writes_deterministic_json(specs):
    assert run("schema", "-o", "a.json").exit_code == 0
    assert run("schema", "-o", "b.json").exit_code == 0
    text = (specs / "a.json").read_text()
    assert text == (specs / "b.json").read_text() and text.endswith("}\n")
    schema = json.loads(text)
    assert schema["$schema"].startswith("https://json-schema.org/") and "validate" in schema["properties"]


def test_schema_command_prints_to_stdout_without_o(specs):
    result = run("schema")
    assert result.exit_code == 0 and json.loads(result.output)["title"] == "megaspec spec v1"
    assert not (specs / "schema.json").exists()


def test_explain_prints_the_doc(specs):
    result = run("explain", "MS101")
    assert result.exit_code == 0
    assert result.output.startswith("MS101 unknown-key (error)")
    assert "Use instead:" in result.output


def test_explain_unknown_code_suggests(specs):
    result = run("explain", "MS1O1")
    assert result.exit_code == 2 and "Did you mean `MS101`?" in result.output


def test_rules_lists_every_stage_code(specs):
    lines = run("rules").output.splitlines()
    listed = {line.split()[0] for line in lines}
    assert {"MS001", "MS009", "MS090", "MS101", "MS106", "MS801", "MS808", "MS902"} <= listed
    assert any(line.startswith("MS090  unused-suppression") and "warning" in line for line in lines)
