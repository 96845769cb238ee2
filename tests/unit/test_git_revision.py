"""Sweep runs keep the template's git revision and dirty flag: `apply` records it in each run's plan
from the template (a Modal run's container, or a sweep's generated run files, are not in that
repository), and the receipt's provenance takes it from the plan. Real git in a temporary repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

from megaspec.compiler.commands.apply_sweep import lint_all, plan_all, template_sources
from megaspec.compiler.lint.check import check_spec
from megaspec.runtime.contract.git_revision import git_revision
from megaspec.runtime.rank.provenance import collect_provenance
from tests.conftest import tiny_cpu_spec

TEMPLATE = tiny_cpu_spec("gitsweep", "sweep:", "  matrix:", "    train.lr: [1.0e-3, 2.0e-3]")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_every_run_of_a_sweep_records_the_templates_revision_and_dirty_flag(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "t.yaml").write_text(TEMPLATE)
    git(repo, "add", "t.yaml")
    git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "t")
    (repo / "t.yaml").write_text(TEMPLATE + "# an edit not committed\n")
    head = git(repo, "rev-parse", "HEAD")
    assert git_revision(str(repo / "t.yaml")) == (head, True)
    checked = check_spec(repo / "t.yaml")
    out = tmp_path / "elsewhere" / "specs"  # the run files are outside the repository, as runs/ may be
    sources = template_sources(checked, str(repo / "t.yaml"), out)
    runs, errors = lint_all([s.spec for s in sources], None, [s.text for s in sources])
    assert not errors
    planned = plan_all(runs, sources, target=None, steps=None, sweep_id="s", git_of=str(repo / "t.yaml"))
    assert [(p.plan.run.git_sha, p.plan.run.git_dirty) for p in planned] == [(head, True)] * 2
    assert git_revision(str(sources[0].spec)) == (None, None)  # what the runtime would have found
    provenance = collect_provenance(planned[0].plan)
    assert (provenance.git_sha, provenance.git_dirty) == (head, True)
