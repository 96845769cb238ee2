"""`megaspec lint --fix`: each safe fix on the text as written, and how fixes are applied to files."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.diagnostics import Fix, Span
from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.fixes import _apply, apply_fixes

HEAD = "megaspec: 1\nname: fixme\npreset: tiny\ntarget: local\n"
GPU = "megaspec: 1\nname: fixme\npreset: tiny\ntrain: {global_batch: 8, micro_batch: 1}\n"


def fixed(tmp_path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    apply_fixes(check_spec(path).diagnostics)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("before", "after"), [
    ('resources: {gpu: "H100:8"}\n', 'resources: {gpu: "H100!:8"}\n'),
    ("resources:\n  gpu: h100:8\n", "resources:\n  gpu: H100!:8\n"),  # canonical spelling too
    ('resources: {gpu: ["H200:8", "H100:8"]}\n', 'resources: {gpu: ["H200:8", "H100!:8"]}\n'),
])
def test_h100_becomes_exact(tmp_path, before, after):
    assert fixed(tmp_path, GPU + before) == GPU + after


@pytest.mark.parametrize(("before", "after"), [
    ("image: {python: 3.10}\n", 'image: {python: "3.10"}\n'),  # the YAML float 3.1, as the user wrote it
    ('train: {steps: "300"}\n', "train: {steps: 300}\n"),
    ("train: {lr: '3e-4'}\n", "train: {lr: 3e-4}\n"),
    ('train: {compile: "true"}\n', "train: {compile: true}\n"),
])
def test_wrong_type_fixes_are_the_certain_ones(tmp_path, before, after):
    assert fixed(tmp_path, HEAD + before) == HEAD + after
    assert check_spec(tmp_path / "spec.yaml").diagnostics == []


@pytest.mark.parametrize("text", ['train: {steps: "3.5"}\n', 'train: {compile: "yes"}\n', 'train: {lr: "fast"}\n'])
def test_no_fix_when_the_result_would_still_be_wrong(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + text)
    [d] = check_spec(path).diagnostics
    assert d.code == "MS103" and d.fix is None


@pytest.mark.parametrize(("prefix", "after"), [("tokens", "tokens/"), ("'tokens'", "'tokens/'"), ('"a b"', '"a b/"')])
def test_bucket_prefix_gets_its_slash(tmp_path, prefix, after):
    bucket = "buckets:\n  corpus: {{bucket: my-corpus, mount: /mnt/corpus, prefix: {}}}\n"
    assert fixed(tmp_path, HEAD + bucket.format(prefix)) == HEAD + bucket.format(after)


def test_unused_suppressions_are_removed_with_their_line_or_their_spaces(tmp_path):
    text = HEAD + "# megaspec: ignore[MS206] stale\ntrain:\n  steps: 300   # megaspec: ignore[MS203] once\n"
    assert fixed(tmp_path, text) == HEAD + "train:\n  steps: 300\n"


def test_line_endings_and_byte_order_mark_are_kept(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (GPU + 'resources: {gpu: "H100:8"}  # megaspec: ignore[MS304] x\n')
                     .replace("\n", "\r\n").encode())
    applied = apply_fixes(check_spec(path).diagnostics)
    assert applied == {str(path): 2}
    assert path.read_bytes() == b"\xef\xbb\xbf" + (GPU + 'resources: {gpu: "H100!:8"}\n').replace("\n", "\r\n").encode()


def test_a_file_changed_since_the_lint_is_left_alone(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(GPU + 'resources: {gpu: "H100:8"}\n')
    diagnostics = check_spec(path).diagnostics
    path.write_text(GPU + 'resources: {gpu: "H100:4"}\n')  # edited in between
    assert apply_fixes(diagnostics) == {}
    assert path.read_text() == GPU + 'resources: {gpu: "H100:4"}\n'


def test_overlapping_fixes_keep_the_first():
    span = Span(path="s.yaml", line=1, col=1, end_line=1, end_col=5)
    inner = Span(path="s.yaml", line=1, col=2, end_line=1, end_col=3)
    fixes = [Fix(title="a", span=span, original="abcd", replacement="AB"),
             Fix(title="b", span=inner, original="b", replacement="X")]
    assert _apply("abcd\n", fixes) == ("AB\n", 1)


def test_a_fix_in_a_base_file_is_made_there(tmp_path):
    (tmp_path / "_base.yaml").write_text('resources: {gpu: "H100:8"}\n')
    spec = tmp_path / "spec.yaml"
    spec.write_text(GPU + "extends: [_base.yaml]\n")
    apply_fixes(check_spec(spec).diagnostics)
    assert (tmp_path / "_base.yaml").read_text() == 'resources: {gpu: "H100!:8"}\n'
    assert spec.read_text() == GPU + "extends: [_base.yaml]\n"


def test_cli_fixes_until_nothing_applies_then_reports_the_rest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The schema fix (quote 3.10) lets the rules run; they find the H100 the second round fixes.
    (tmp_path / "spec.yaml").write_text(GPU + "image: {python: 3.10, packages: [torch==2.8.0]}\n"
                                        'resources: {gpu: "H100:8", timeout: 30h}\n')
    result = CliRunner().invoke(cli, ["lint", "--fix", "--no-config", "spec.yaml"])
    assert result.exit_code == 1
    assert result.stderr == "fixed 2 finding(s) in 1 file(s): spec.yaml\n"
    assert result.stdout.startswith("spec.yaml:6:") and "[timeout-over-24h]" in result.stdout
    assert 'python: "3.10"' in (tmp_path / "spec.yaml").read_text()
    again = CliRunner().invoke(cli, ["lint", "--fix", "--no-config", "spec.yaml"])
    assert again.stderr == "" and again.stdout == result.stdout


def test_json_report_carries_the_fix_for_tools(tmp_path):
    import json

    from megaspec.compiler.lint.report import render_report

    path = tmp_path / "spec.yaml"
    path.write_text(GPU + 'resources: {gpu: "H100:8"}\n')
    checked = check_spec(path, display="spec.yaml")
    [entry] = json.loads(render_report("json", checked.diagnostics, texts={}, num_files=1))["diagnostics"]
    assert entry["fix"] == {"title": "Write `H100!`", "path": "spec.yaml", "line": 5, "col": 18, "end_line": 5,
                            "end_col": 26, "replacement": '"H100!:8"'}


def test_human_report_names_each_fix_and_counts_them(tmp_path):
    from megaspec.compiler.lint.report import render_report

    path = tmp_path / "spec.yaml"
    path.write_text(GPU + 'resources: {gpu: "H100:8"}\n')
    checked = check_spec(path, display="spec.yaml")
    text = render_report("human", checked.diagnostics, texts=checked.smap.texts, num_files=1)
    assert "  = fix: Write `H100!` (`megaspec lint --fix`)\n" in text
    assert text.endswith("Found 0 errors and 1 warning in 1 file.\n1 fixable with `megaspec lint --fix`.\n")


TRACKED = ("megaspec: 1\nname: fixme\npreset: tiny\nresources: {gpu: \"H100!:1\"}\n"
           "tracking: {tensorboard: true, wandb: {project: p}}\n")


@pytest.mark.parametrize(("before", "after"), [
    ("image: {packages: [torch==2.8.0]}\nsecrets: [hf]\n",
     "image: {packages: [torch==2.8.0, tensorboard==2.21.0, wandb==0.21.0]}\nsecrets: [hf, wandb]\n"),
    ("image: {packages: []}\nsecrets: []\n",
     "image: {packages: [tensorboard==2.21.0, wandb==0.21.0]}\nsecrets: [wandb]\n"),
    ("image:\n  packages:\n    - torch==2.8.0\nsecrets:\n- hf\n",  # each block list keeps its own indent
     "image:\n  packages:\n    - torch==2.8.0\n    - tensorboard==2.21.0\n    - wandb==0.21.0\nsecrets:\n- hf\n- wandb\n"),
])
def test_tracking_on_modal_gets_its_packages_and_secret(tmp_path, monkeypatch, before, after):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(TRACKED + before)
    # two packages appended at one place: the second round of `--fix` adds the second
    result = CliRunner().invoke(cli, ["lint", "--fix", "--no-config", "spec.yaml"])
    assert result.exit_code == 0 and result.stderr == "fixed 3 finding(s) in 1 file(s): spec.yaml\n"
    assert (tmp_path / "spec.yaml").read_text() == TRACKED + after


def test_no_tracking_fix_where_the_list_is_not_written_or_spans_lines(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(TRACKED + "image: {packages: [torch==2.8.0,\n  numpy==2.2.6]}\n")
    found = check_spec(path).diagnostics
    assert sorted(d.code for d in found) == ["MS601", "MS601", "MS602"] and all(d.fix is None for d in found)
