"""The README cannot drift: its set-up commands are what CI runs, and its lint example is real output."""

from __future__ import annotations

import re

from click.testing import CliRunner

from megaspec.compiler.cli import cli
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_the_two_setup_commands():
    first = README.split("\n```bash\n", 1)
    assert first[0].count("\n") <= 2, "the set-up commands must come first"
    main_job, tests = _blocks("bash")[0].strip().splitlines()
    assert main_job.endswith("megaspec apply specs/cpu-local.yaml") and "torch==2.13.0" in main_job
    assert tests.endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command():
    tests_command = _blocks("bash")[0].strip().splitlines()[1]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert tests_command in ci.splitlines()


def test_readme_lint_example_is_what_megaspec_prints(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    block = next(b for b in _blocks("text") if b.startswith("$ megaspec lint"))
    command, expected = block.split("\n", 1)
    result = CliRunner().invoke(cli, [*command.split()[2:], "--no-config"])
    assert result.exit_code == 1
    assert result.output == expected


def test_specs_named_in_the_readme_exist():
    for name in set(re.findall(r"`((?:specs/)?[\w-]+\.yaml)`", README)):
        path = REPO_ROOT / (name if "/" in name else f"specs/{name}")
        assert path.is_file(), name


def test_readme_memory_line_is_what_plan_prints(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    block = next(b for b in _blocks("text") if b.startswith("  memory"))
    result = CliRunner().invoke(cli, ["plan", "specs/h200x8.yaml"])
    assert result.exit_code == 0
    assert block in result.output


def test_the_shell_completion_the_readme_documents_completes_the_verbs():
    import os
    import subprocess

    from tests.conftest import MEGASPEC

    shells = re.findall(r"_MEGASPEC_COMPLETE=(\w+_source)", README)
    assert shells == ["bash_source", "zsh_source", "fish_source"]
    for shell in shells:
        script = subprocess.run(MEGASPEC, env={**os.environ, "_MEGASPEC_COMPLETE": shell}, capture_output=True, text=True)
        assert script.returncode == 0 and "_megaspec_completion" in script.stdout
    env = {**os.environ, "_MEGASPEC_COMPLETE": "bash_complete", "COMP_WORDS": "megaspec li", "COMP_CWORD": "1"}
    completed = subprocess.run(MEGASPEC, env=env, capture_output=True, text=True)
    assert completed.stdout.splitlines() == ["plain,lint"]
