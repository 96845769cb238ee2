"""Stage 1 (source): positions in the source map and located diagnostics for every YAML problem."""

from __future__ import annotations

import time

import pytest

from megaspec.compiler.spec.source import MAX_DEPTH, MAX_FILE_BYTES, load_source, parse_text

SPEC = """\
megaspec: 1
name: demo
resources:
  gpu: "H100:8"
  exact: true
image:
  packages:
    - torch==2.8.0
    - numpy==2.2.6
checkpoint: {every: 100, resume: auto}
secrets: [wandb, hf]
"""


def at(span) -> tuple[int, int, int]:
    return span.line, span.col, span.end_col


def test_keys_and_values_are_one_based():
    smap = parse_text(SPEC, "s.yaml").smap
    assert at(smap.node(("megaspec",)).key) == (1, 1, 9)
    assert at(smap.node(("megaspec",)).value) == (1, 11, 12)
    assert at(smap.node(("resources", "gpu")).key) == (4, 3, 6)
    assert at(smap.node(("resources", "gpu")).value) == (4, 8, 16)  # quotes included


def test_list_items_have_value_spans_and_no_key():
    smap = parse_text(SPEC, "s.yaml").smap
    item = smap.node(("image", "packages", 1))
    assert item.key is None
    assert at(item.value) == (9, 7, 19)
    assert smap.key_span(("image", "packages", 1)) == item.value


def test_flow_style_positions():
    smap = parse_text(SPEC, "s.yaml").smap
    assert at(smap.node(("checkpoint", "every")).key) == (10, 14, 19)
    assert at(smap.node(("checkpoint", "every")).value) == (10, 21, 24)
    assert at(smap.node(("checkpoint", "resume")).value) == (10, 34, 38)
    assert at(smap.node(("secrets", 1)).value) == (11, 18, 20)


def test_nearest_falls_back_to_the_closest_written_ancestor():
    smap = parse_text(SPEC, "s.yaml").smap
    assert smap.value_span(("resources", "nodes")) == smap.node(("resources",)).value
    assert smap.nearest(("train", "steps"))[0] == ()


def test_plain_data_has_no_ruamel_types():
    data = parse_text(SPEC, "s.yaml").data
    assert type(data) is dict and type(data["image"]["packages"]) is list
    assert type(data["checkpoint"]["every"]) is int and type(data["resources"]["exact"]) is bool


@pytest.mark.parametrize("text, code, line, col", [
    ("megaspec: 1\nname: [a, b\n", "MS001", 3, 1),
    ("megaspec: 1\ntrain:\n  steps: 1\n  steps: 2\n", "MS002", 4, 3),
    ("megaspec: 1\ntrain:\n\tsteps: 1\n", "MS003", 3, 1),
    ("- a\n- b\n", "MS007", 1, 1),
    ("", "MS007", 1, 1),
    ("megaspec: 1\nname: !secret x\n", "MS001", 2, 7),
    ("megaspec: 1\ntrain: !!python/object/apply:os.system [echo]\n", "MS001", 2, 8),
    ("megaspec: 1\nname: !!binary aGVsbG8=\n", "MS001", 2, 7),
    ("megaspec: 1\nsecrets: !!set {a: null}\n", "MS001", 2, 10),
    ("megaspec: 1\n---\nmegaspec: 1\n", "MS001", 2, 1),
])
def test_yaml_problems_are_located(text, code, line, col):
    src = parse_text(text, "bad.yaml")
    assert src.data is None
    [d] = src.diagnostics
    assert (d.code, d.span.path, d.span.line, d.span.col) == (code, "bad.yaml", line, col)
    assert d.hint and d.message


def test_explicit_core_tags_keep_their_meaning():
    src = parse_text("megaspec: 1\nname: !!str 5\nsteps: !!int 3\n", "ok.yaml")
    assert (src.diagnostics, src.data) == ([], {"megaspec": 1, "name": "5", "steps": 3})


def test_duplicate_key_names_the_key():
    [d] = parse_text("train:\n  steps: 1\n  steps: 2\n", "d.yaml").diagnostics
    assert d.message == "key `steps` is defined twice in the same mapping"
    assert d.related


def test_alias_bomb_is_fast_and_located():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    started = time.process_time()  # CPU time (the work of expanding), not the wall clock that load stretches
    src = parse_text("\n".join(lines) + "\n", "bomb.yaml")
    assert time.process_time() - started < 1.0
    [d] = src.diagnostics
    assert d.code == "MS005" and d.span.line >= 1


def test_deep_nesting_is_located():
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    [d] = parse_text(text, "deep.yaml").diagnostics
    assert d.code == "MS006" and d.span.line == 1 and d.span.col > 3


def test_deep_block_nesting_is_located():
    text = "".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 3)) + "  " * (MAX_DEPTH + 3) + "v: 1\n"
    [d] = parse_text(text, "deep.yaml").diagnostics
    assert d.code == "MS006" and d.span.line > 1


def test_size_cap(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_FILE_BYTES + "\n")
    [d] = load_source(big, "big.yaml").diagnostics
    assert (d.code, d.span.line, d.span.col) == ("MS004", 1, 1)


def test_missing_file_has_no_span(tmp_path):
    [d] = load_source(tmp_path / "nope.yaml", "nope.yaml").diagnostics
    assert d.code == "MS008" and d.span is None


def test_non_utf8_is_unreadable(tmp_path):
    f = tmp_path / "latin.yaml"
    f.write_bytes("name: caf\xe9\n".encode("latin-1"))
    [d] = load_source(f, "latin.yaml").diagnostics
    assert d.code == "MS011" and d.span.line == 1


def test_bom_is_accepted(tmp_path):
    f = tmp_path / "bom.yaml"
    f.write_bytes("\ufeffmegaspec: 1\n".encode())
    src = load_source(f, "bom.yaml")
    assert src.data == {"megaspec": 1} and not src.diagnostics


def test_a_missing_top_level_key_points_at_the_first_key_not_the_modeline(tmp_path):
    from megaspec.compiler.lint.check import check_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text("# yaml-language-server: $schema=../schema.json\n# notes\nmegaspec: 1\nname: x\ntarget: local\n")
    [d] = [d for d in check_spec(spec).diagnostics if d.code == "MS102"]  # no preset and no model
    assert (d.span.line, d.span.col) == (3, 1) and "no `preset:` is given" in d.message
    assert parse_text("{}\n", "empty.yaml").smap.value_span(()).line == 1  # no key at all: the first line
