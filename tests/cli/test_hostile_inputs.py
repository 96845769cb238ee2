"""Issue 23 item 5: inputs that crashed a verb with MS902 or ran unbounded, each now a located answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.spec.name_template import NameTemplateError, render_names

HEAD = "megaspec: 1\nname: hostile\ntarget: local\npreset: tiny\n"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sweep_dry_run_lints_each_run_as_apply_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("gb.yaml").write_text(HEAD + "resources: {ranks: 2}\ntrain: {micro_batch: 4, global_batch: 8}\n"
                               "sweep:\n  matrix: {train.global_batch: [8, 6]}\n")
    result = run("sweep", "--dry-run", "gb.yaml")
    assert result.exit_code == 1 and "error[MS202]" in result.stderr and "MS902" not in result.output


@pytest.mark.parametrize("verb", [["lint"], ["plan"], ["compile"], ["sweep"], ["apply"], ["cache", "seed"]])
def test_a_spec_path_that_is_a_link_loop_is_a_usage_error(tmp_path, monkeypatch, verb):
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").symlink_to("b.yaml")
    Path("b.yaml").symlink_to("a.yaml")
    result = run(*verb, "a.yaml")
    assert result.exit_code == 2 and "symbolic link that leads to no file" in result.output, result.output


def test_fix_keeps_an_anchor_and_leaves_a_tag_alone(tmp_path):
    spec = tmp_path / "fx.yaml"
    spec.write_text(HEAD + "resources: {ranks: 1}\nimage:\n  python: &py 3.10\n")
    run("lint", "--fix", str(spec))
    assert "python: &py \"3.10\"" in spec.read_text()
    assert run("lint", "--format", "concise", str(spec)).exit_code == 0
    tagged = HEAD + "resources: {ranks: 1}\nimage:\n  python: !!float 3.10\n"
    spec.write_text(tagged)
    run("lint", "--fix", str(spec))
    assert spec.read_text() == tagged  # quoting behind the tag would still be a float: no fix offered


@pytest.mark.parametrize("template", [
    "{{ '%*d' % (1000000000, 1) }}", "{{ '%.*f' % (999999, 1.0) }}", "{{ name | format(1) }}%0999999d",
    "{% if name %}x{% endif %}" * 50_000,
])
def test_name_templates_that_would_run_unbounded_are_refused_before_they_run(template):
    """A width taken from an argument (`%*d`: 5.6 s and 993 MB before) and a template of 1 MiB of
    `{% if %}` (43 s to parse before) are refused before any rendering or parsing."""
    with pytest.raises(NameTemplateError, match="wider than a name|characters long"):
        render_names(template, [{"name": "%0999999d", "matrix": {}}])
