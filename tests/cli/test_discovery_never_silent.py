"""A typo in a spec's header never hides the file (issue 22 item 2): `megaspec lint DIR` lints a near miss
(`megaspce: 1`, or spec keys without the header) in every output format, and so do the published
pre-commit hook and the example CI workflow, run as they are written."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from megaspec.compiler.lint.discover import spec_files
from tests.conftest import CLEAN_SPEC, REPO_ROOT, run_megaspec

CLEAN = CLEAN_SPEC + "resources:\n  ranks: 2\n"
TYPO = CLEAN.replace("megaspec: 1", "megaspce: 1").replace("ranks: 2", "ranks: 2\n  nodes: 0")  # a real error inside
DID_YOU_MEAN = "Did you mean `megaspec`?"
NOT_SPECS = {  # YAML files of other tools that share a key or two with a spec
    "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers: []\n",
    "compose.yaml": "name: app\nservices: {web: {image: nginx}}\nvolumes: {data: {}}\nsecrets: {}\n",
    "workflow.yml": "name: ci\non: [push]\njobs: {build: {runs-on: ubuntu-latest}}\n",
    "configmap.yaml": "apiVersion: v1\nkind: ConfigMap\ndata: {train: yes}\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "clean.yaml").write_text(CLEAN)
    (tmp_path / "specs" / "typo.yaml").write_text(TYPO)
    return tmp_path


def test_near_misses_are_discovered_and_other_tools_files_are_not(tmp_path: Path):
    near = {"typo.yaml": TYPO, "cased.yml": CLEAN.replace("megaspec:", "Megaspec:"),
            "headless.yaml": "name: run\nresources: {ranks: 2}\ntrain: {steps: 3}\n",
            "quoted.yaml": CLEAN.replace("megaspec: 1", '"megaspec": 1')}
    for name, text in {**near, **NOT_SPECS}.items():
        (tmp_path / name).write_text(text)
    assert [p.name for p in spec_files(tmp_path)] == sorted(near)


@pytest.mark.parametrize("fmt", ["human", "concise", "json", "github", "sarif"])
def test_lint_dir_reports_the_misspelled_header_in_every_format(project: Path, fmt: str):
    result = run_megaspec("lint", "--format", fmt, "specs/", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    if fmt == "json":
        found = {(d["code"], d["line"], d["hint"]) for d in json.loads(out)["diagnostics"]
                 if (d["path"] or "").endswith("typo.yaml")}
        assert ("MS101", 1, DID_YOU_MEAN) in found and any(code == "MS104" for code, _, _ in found), found
    elif fmt == "sarif":
        results = json.loads(out)["runs"][0]["results"]
        typo = [r for r in results if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("typo.yaml")]
        assert {r["ruleId"] for r in typo} >= {"MS101", "MS102", "MS104"} and DID_YOU_MEAN in out
    else:
        assert "typo.yaml" in out and "MS101" in out and DID_YOU_MEAN in out and "MS104" in out, out
    assert "All checks passed" not in out


def _hook() -> dict:
    [hook] = YAML(typ="safe").load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    return hook


def test_the_pre_commit_hook_as_published_fails_on_the_misspelled_header(project: Path):
    """pre-commit runs `entry` + `args` in the repository (pass_filenames: false): that command here."""
    hook = _hook()
    assert hook["pass_filenames"] is False
    [program, *entry_args] = shlex.split(hook["entry"])
    assert program == "megaspec"
    result = run_megaspec(*entry_args, *hook["args"], cwd=project)
    assert result.returncode == 1 and "specs/typo.yaml:1:1: error[MS101]" in result.stdout, result.stdout
    assert DID_YOU_MEAN in result.stdout


def _workflow_lint_steps() -> list[str]:
    workflow = YAML(typ="safe").load((REPO_ROOT / "examples" / "ci" / "lint-specs.yml").read_text())
    return [step["run"] for step in workflow["jobs"]["megaspec-lint"]["steps"] if "megaspec lint" in step.get("run", "")]


def test_the_example_ci_workflow_fails_and_uploads_the_misspelled_header(project: Path, tmp_path: Path):
    """Each `run:` step that lints, run by bash as Actions does (GITHUB_ACTIONS=true), `megaspec` on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    entry = shlex.join([sys.executable, "-c", "from megaspec.compiler.cli import main; main()"])
    (bin_dir / "megaspec").write_text(f'#!/bin/sh\nexec {entry} "$@"\n')
    (bin_dir / "megaspec").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GITHUB_ACTIONS": "true"}
    sarif_step, annotations_step = _workflow_lint_steps()
    uploaded = subprocess.run(["bash", "-e", "-c", sarif_step], cwd=project, env=env, capture_output=True, text=True)
    assert uploaded.returncode == 0, uploaded.stderr  # findings do not skip the upload step
    assert '"ruleId": "MS101"' in (project / "megaspec.sarif").read_text()
    annotated = subprocess.run(["bash", "-e", "-c", annotations_step], cwd=project, env=env, capture_output=True, text=True)
    assert annotated.returncode == 1
    assert "megaspec MS101 (unknown-key),file=specs/typo.yaml,line=1," in annotated.stdout and DID_YOU_MEAN in annotated.stdout
