"""Stage 1b (compose): `extends:` deep merge, spans in base files, cycles, missing bases, presets, origins."""

from __future__ import annotations

from pathlib import Path

from megaspec.compiler.spec.compose import MODEL_FIELDS, compose, deep_merge
from megaspec.runtime.contract.presets import PRESETS

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "frontend" / "extends"
SHOWN = "tests/fixtures/frontend/extends"


def load(name: str):
    return compose(FIXTURES / name, f"{SHOWN}/{name}")


def test_deep_merge_rules():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": 1}}
    child = {"a": {"y": [3]}, "c": 5}
    assert deep_merge(base, child) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 5}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1, "c": {"k": 1}}  # inputs untouched


def test_chain_merges_child_over_bases():
    c = load("child.yaml")
    assert not c.diagnostics
    assert c.data["name"] == "child-run"
    assert c.data["train"] == {"steps": 40, "warmup_steps": 5, "precision": "fp32", "lr": 1.0e-3}
    assert c.data["image"]["packages"] == ["torch==2.8.0"]  # lists are replaced, not appended
    assert c.files == [f"{SHOWN}/child.yaml", f"{SHOWN}/_mid.yaml", f"{SHOWN}/_base.yaml"]
    assert set(c.smap.texts) == set(c.files)


def test_spans_point_at_the_file_that_provided_the_value():
    smap = load("child.yaml").smap
    assert str(smap.value_span(("train", "steps"))) == f"{SHOWN}/_mid.yaml:3:10"
    assert str(smap.value_span(("resources", "ranks"))) == f"{SHOWN}/_base.yaml:6:10"
    assert str(smap.value_span(("train", "warmup_steps"))) == f"{SHOWN}/child.yaml:9:17"
    assert str(smap.key_span(("image", "packages"))) == f"{SHOWN}/child.yaml:7:3"
    assert smap.node(("image", "packages", 1)) is None  # the base's second item was replaced


def test_origins_for_plan():
    c = load("child.yaml")
    assert c.origin(("train", "steps")) == f"{SHOWN}/_mid.yaml:3"
    assert c.origin(("model", "n_layers")) == f"{SHOWN}/child.yaml:5"
    assert c.origin(("model", "d_model")) == "preset `tiny`"
    assert c.origin(("train", "seed")) == "default"


def test_preset_fills_only_unwritten_model_fields():
    c = load("child.yaml")
    expected = {**PRESETS["tiny"].as_dict(), "n_layers": 4}
    assert c.data["model"] == expected
    assert c.preset_paths == {("model", f) for f in MODEL_FIELDS if f != "n_layers"}


def test_bad_value_in_base_is_located_in_base():
    c = load("uses_bad_base.yaml")
    assert not c.diagnostics and not c.blocked
    assert str(c.smap.value_span(("resources", "nodes"))) == f"{SHOWN}/_bad_base.yaml:4:10"


def test_cycle_is_reported_at_the_extends_item_with_the_other_file_related():
    c = load("cycle_a.yaml")
    [d] = c.diagnostics
    assert (d.code, d.rule) == ("MS009", "extends-cycle")
    assert d.message == "`extends: cycle_a.yaml` makes a cycle: cycle_a.yaml -> cycle_b.yaml -> cycle_a.yaml"
    assert str(d.span) == f"{SHOWN}/cycle_b.yaml:3:5"
    assert d.yaml_path == ("extends", 0)
    assert str(d.related[0].span) == f"{SHOWN}/cycle_a.yaml:1:10"
    assert c.blocked


def test_missing_base_is_reported_at_the_item():
    [d] = load("missing_base.yaml").diagnostics
    assert (d.code, str(d.span)) == ("MS010", f"{SHOWN}/missing_base.yaml:3:11")
    assert "`_nope.yaml`" in d.message and d.hint.startswith("Check the path")
    assert f"resolved to {(FIXTURES / '_nope.yaml').resolve()})" in d.message


def test_a_missing_base_suggests_the_file_it_probably_meant(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "_gpu-base.yaml").write_text("megaspec: 1\npreset: tiny\n")
    spec = write(tmp_path, "megaspec: 1\nname: s\nextends: [shared/_gpu_base.yml]\n")
    [d] = compose(spec, "s.yaml").diagnostics
    assert d.code == "MS010" and d.hint.endswith(" Did you mean `shared/_gpu-base.yaml`?")


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_preset_suggests_the_closest(tmp_path):
    c = compose(write(tmp_path, "megaspec: 1\nname: x\npreset: dense-1g\n"), "s.yaml")
    [d] = c.diagnostics
    assert (d.code, d.rule, str(d.span)) == ("MS105", "invalid-choice", "s.yaml:3:9")
    assert d.hint == "Did you mean `dense-1b`?"
    assert "preset" not in c.data  # reported once, here, not again by the model stage


def test_no_preset_and_incomplete_model_is_missing_key(tmp_path):
    c = compose(write(tmp_path, "megaspec: 1\nname: x\nmodel:\n  d_model: 64\n"), "s.yaml")
    [d] = c.diagnostics
    assert (d.code, str(d.span)) == ("MS102", "s.yaml:3:1")
    assert d.message == "`model.n_layers` (and 5 more `model:` fields) is not set and no `preset:` is given"
    assert d.hint.startswith("Set `preset:` (one of `tiny`")


def test_no_model_at_all_points_at_the_file_root(tmp_path):
    [d] = compose(write(tmp_path, "megaspec: 1\nname: x\n"), "s.yaml").diagnostics
    assert (d.code, d.span.line, d.span.col) == ("MS102", 1, 1)


def test_full_model_without_preset_is_fine(tmp_path):
    dims = "\n".join(f"  {k}: {v}" for k, v in PRESETS["tiny"].as_dict().items())
    c = compose(write(tmp_path, f"megaspec: 1\nname: x\nmodel:\n{dims}\n"), "s.yaml")
    assert not c.diagnostics and not c.preset_paths


def test_yaml_error_in_base_blocks_the_model_stage(tmp_path):
    write(tmp_path, "megaspec: [1\n", "_b.yaml")
    c = compose(write(tmp_path, "extends: _b.yaml\nname: x\n"), "s.yaml")
    assert [d.code for d in c.diagnostics] == ["MS001"]
    assert c.diagnostics[0].span.path == "_b.yaml"
    assert c.blocked


def test_a_text_the_caller_just_wrote_is_composed_as_the_file_and_its_bases_still_read():
    """`apply TEMPLATE` lints each run file from the text it wrote: the same data, spans and origins as
    reading the file, and a base it extends is still read from disk (inside the project root)."""
    path = FIXTURES / "child.yaml"
    read, given = load("child.yaml"), compose(path, f"{SHOWN}/child.yaml", text=path.read_text())
    assert given.data == read.data and given.smap.entries == read.smap.entries and given.files == read.files
    assert given.origin(("train", "precision")) == read.origin(("train", "precision"))
    edited = compose(path, f"{SHOWN}/child.yaml", text=path.read_text().replace("warmup_steps: 5", "warmup_steps: 6"))
    assert edited.data["train"]["warmup_steps"] == 6  # the text given is what is linted
