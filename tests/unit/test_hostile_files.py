"""Hostile files and `extends:` paths (issue 11): each is a located diagnostic, never an internal error,
a hang, or a read of something that is not a spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.discover import spec_files
from megaspec.compiler.lint.report import render_report
from megaspec.compiler.spec import compose as compose_module
from megaspec.compiler.spec.compose import MAX_EXTENDS_DEPTH, compose
from megaspec.compiler.spec.source import load_source
from megaspec.compiler.spec.yaml_nodes import MAX_NODES

SPEC = "megaspec: 1\nname: run\ntarget: local\npreset: tiny\nresources: {ranks: 1}\n"


def codes(diagnostics) -> list[str]:
    return [d.code for d in diagnostics]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("extends", "why"), [
    ('"a\\0b.yaml"', "NUL character"),
    ("x" * 300 + ".yaml", "file name too long"),
    ("loop1.yaml", "symlink loop"),
    ("/proc/self/environ", "`.yaml` or `.yml`"),
    ("../../etc/passwd", "`.yaml` or `.yml`"),
    ("../outside/_base.yaml", "outside the project"),
    ("fifo.yaml", "not a regular file"),
    ("dev.yaml", "outside the project"),  # a link to /dev/zero
])
def test_bad_extends_paths_are_located_ms015(tmp_path: Path, extends: str, why: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "loop1.yaml").symlink_to("loop2.yaml")
    (project / "loop2.yaml").symlink_to("loop1.yaml")
    (project / "dev.yaml").symlink_to("/dev/zero")
    os.mkfifo(project / "fifo.yaml")
    (tmp_path / "outside").mkdir()
    write(tmp_path / "outside", "_base.yaml", "megaspec: 1\ntrain: {steps: 5}\n")
    spec = write(project, "run.yaml", f"{SPEC}extends: {extends}\n")
    found = compose(spec, "run.yaml").diagnostics
    assert codes(found) == ["MS015"], found
    assert why in found[0].message
    assert str(found[0].span) == "run.yaml:6:10"


def test_a_base_in_the_git_work_tree_above_the_spec_is_allowed(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path, "_base.yaml", "megaspec: 1\ntrain: {steps: 5}\n")
    (tmp_path / "specs").mkdir()
    spec = write(tmp_path / "specs", "run.yaml", f"{SPEC}extends: ../_base.yaml\n")
    composed = compose(spec)
    assert not composed.diagnostics and composed.data["train"] == {"steps": 5}


def test_a_file_that_did_not_load_as_a_spec_is_never_a_snippet(tmp_path: Path) -> None:
    secret = write(tmp_path, "environ.yaml", "AWS_SECRET=abc\0HOME=/root\0")
    checked = check_spec(write(tmp_path, "run.yaml", f"{SPEC}extends: environ.yaml\n"))
    assert checked.smap.texts.keys() == {str(tmp_path / "run.yaml")}
    assert codes(check_spec(secret).diagnostics) == ["MS001"] and not check_spec(secret).smap.texts


def test_diamond_extends_reads_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """21 levels of two bases that both extend the next level: 2^21 paths, 43 files."""
    write(tmp_path, "_l20a.yaml", "megaspec: 1\ntrain: {steps: 7}\n")
    write(tmp_path, "_l20b.yaml", "megaspec: 1\n")
    for level in range(19, -1, -1):
        for side in "ab":
            write(tmp_path, f"_l{level}{side}.yaml", f"megaspec: 1\nextends: [_l{level + 1}a.yaml, _l{level + 1}b.yaml]\n")
    spec = write(tmp_path, "run.yaml", f"{SPEC}extends: [_l0a.yaml, _l0b.yaml]\n")
    reads: list[Path] = []
    monkeypatch.setattr(compose_module, "load_source", lambda real, display: reads.append(real) or load_source(real, display))
    composed = compose(spec)
    assert not composed.diagnostics and composed.data["train"] == {"steps": 7}
    assert len(composed.files) == 43 and len(reads) == len(set(reads)) == 43  # not one read per path (2^21)


def test_a_long_extends_chain_is_reported_where_it_passes_the_limit(tmp_path: Path) -> None:
    for i in range(1000):
        write(tmp_path, f"_b{i}.yaml", f"megaspec: 1\nextends: _b{i + 1}.yaml\n")
    write(tmp_path, "_b1000.yaml", "megaspec: 1\n")
    found = compose(write(tmp_path, "run.yaml", f"{SPEC}extends: _b0.yaml\n"), "run.yaml").diagnostics
    assert codes(found) == ["MS006"]
    assert f"more than {MAX_EXTENDS_DEPTH} files deep" in found[0].message
    assert found[0].span.path == f"_b{MAX_EXTENDS_DEPTH - 2}.yaml" and found[0].span.line == 2


@pytest.mark.parametrize("text", ["0x_", "0o_", "0b_", "-0x_", "+0b__"])
def test_an_int_prefix_without_digits_is_text(tmp_path: Path, text: str) -> None:
    found = check_spec(write(tmp_path, "run.yaml", f"{SPEC}train: {{steps: {text}}}\n")).diagnostics
    assert codes(found) == ["MS103"] and str(found[0].span).endswith(":6:16")


def test_a_5000_digit_integer_is_located_ms014(tmp_path: Path) -> None:
    found = check_spec(write(tmp_path, "run.yaml", f"{SPEC}train: {{steps: {'9' * 5000}}}\n")).diagnostics
    assert codes(found) == ["MS014"] and str(found[0].span).endswith(":6:16")


def test_many_plain_keys_are_a_large_document_not_an_alias_bomb(tmp_path: Path) -> None:
    keys = "".join(f"  k{i}: {i}\n" for i in range(MAX_NODES + 10))
    found = load_source(write(tmp_path, "run.yaml", f"{SPEC}image:\n  env:\n{keys}")).diagnostics
    assert codes(found) == ["MS004"] and "alias" not in found[0].message  # refused before composing
    walked = "".join(f"  k{i}: [{i}]\n" for i in range(MAX_NODES // 2))  # under the pre-check, over the budget
    found = load_source(write(tmp_path, "walked.yaml", f"{SPEC}image:\n  env:\n{walked}")).diagnostics
    assert codes(found) == ["MS004"] and "more than 10,000 values" in found[0].message
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" \
           "e: [*d, *d, *d]\n"
    assert codes(load_source(write(tmp_path, "bomb.yaml", bomb)).diagnostics) == ["MS005"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "fifo"])
def test_only_regular_files_are_read(tmp_path: Path, device: str) -> None:
    if device == "fifo":
        device = str(tmp_path / "x.yaml")
        os.mkfifo(device)  # opened for reading with no writer: a blocking open would hang here
    found = load_source(device).diagnostics
    assert codes(found) == ["MS011"] and "not a regular file" in found[0].message


def test_discovery_skips_a_fifo_named_like_a_spec(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.yaml")
    write(tmp_path, "run.yaml", SPEC)
    assert spec_files(tmp_path) == [tmp_path / "run.yaml"]


@pytest.mark.parametrize("brk", ["\r", "\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_lines_are_counted_at_newlines_only(tmp_path: Path, brk: str) -> None:
    """ruamel breaks lines at `\\r`, U+0085, U+2028, U+2029 and `splitlines()` at more; editors,
    GitHub and SARIF at `\\n` only, so a diagnostic after such a character keeps its real line."""
    text = f"# a comment{brk}# still a comment\n{SPEC}train: {{steps: 0}}\n"
    checked = check_spec(write(tmp_path, "run.yaml", text))
    if brk in "\x0b\x0c\x1c\x1e":  # C0 controls are not YAML: refused where they are
        assert codes(checked.diagnostics) == ["MS001"] and str(checked.diagnostics[0].span).endswith(":1:12")
        return
    assert codes(checked.diagnostics) == ["MS104"]
    span = checked.diagnostics[0].span
    assert (span.line, span.col) == (7, 16)
    assert checked.smap.text_at(span) == "0"
    report = render_report("human", checked.diagnostics, texts=checked.smap.texts, num_files=1)
    assert "7 | train: {steps: 0}" in report and brk not in report


def test_pyproject_toml_is_read_only_as_a_bounded_regular_file(tmp_path: Path) -> None:
    from megaspec.compiler.lint.config import load_config

    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "pyproject.toml")
    assert load_config(tmp_path / "fifo").diagnostics == ()  # not a regular file: not a config
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "pyproject.toml").write_text("#" * (2 << 20))
    found = load_config(tmp_path / "big").diagnostics
    assert codes(found) == ["MS012"] and "limit" in found[0].message
