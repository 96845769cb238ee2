"""Stage 2b (validate): every pydantic error type maps to an MS1xx diagnostic at the right YAML span."""

from __future__ import annotations

import pytest

from megaspec.compiler.spec.source import parse_text
from megaspec.compiler.spec.validate import build_spec, dotted

HEAD = "megaspec: 1\nname: demo\npreset: tiny\n"


def check(body: str, head: str = HEAD):
    src = parse_text(head + body, "s.yaml")
    assert not src.diagnostics, src.diagnostics
    spec, diagnostics = build_spec(src.data, src.smap)
    assert (spec is None) == bool(diagnostics)
    return diagnostics


def one(body: str, head: str = HEAD):
    diagnostics = check(body, head)
    assert len(diagnostics) == 1, diagnostics
    return diagnostics[0]


def where(d) -> tuple[int, int]:
    return d.span.line, d.span.col


def test_valid_spec_gives_a_spec():
    src = parse_text(HEAD + "validate: {finite_loss: true}\n", "s.yaml")
    spec, diagnostics = build_spec(src.data, src.smap)
    assert not diagnostics and spec.validate_.finite_loss is True


def test_unknown_key_at_the_key_with_did_you_mean():
    d = one("resources:\n  gpus: H100:8\n")
    assert (d.code, d.rule, where(d), d.yaml_path) == ("MS101", "unknown-key", (5, 3), ("resources", "gpus"))
    assert d.message == "unknown key `gpus` in `resources`"
    assert d.hint == "Did you mean `gpu`?"
    assert d.origin == "extra_forbidden"


def test_unknown_key_without_a_close_match_lists_valid_keys():
    d = one("cache:\n  zzz: 1\n")
    assert d.hint == "Remove it; valid keys here: `policy`, `seed`"


def test_yaml_merge_key_points_at_extends():
    d = one("train:\n  <<: {steps: 10}\n  micro_batch: 1\n")
    assert (d.code, where(d), d.message) == ("MS101", (5, 3), "unknown key `<<` in `train`")
    assert "merge keys" in d.hint and "`extends:`" in d.hint


def test_unknown_top_level_key_suggests_the_alias_not_the_python_name():
    d = one("validate_: {}\n")
    assert d.message == "unknown key `validate_` at the top level"
    assert d.hint == "Did you mean `validate`?"


def test_alias_path_in_nested_errors():
    d = one("validate: {finite_loss: 'yes'}\n")
    assert d.yaml_path == ("validate", "finite_loss") and d.code == "MS103"


def test_missing_key_at_the_parent_mapping():
    d = one("buckets:\n  corpus: {mount: /mnt/c}\n")
    assert (d.code, where(d)) == ("MS102", (5, 3))
    assert d.message == "`buckets.corpus` is missing the required key `bucket`"


def test_missing_top_level_key_at_the_root():
    d = one("", head="megaspec: 1\npreset: tiny\n")
    assert (d.code, where(d)) == ("MS102", (1, 1))
    assert d.message == "the spec is missing the required top-level key `name`"


def test_unquoted_python_version_says_quote_it():
    d = one("image:\n  python: 3.10\n")
    assert (d.code, where(d)) == ("MS103", (5, 11))
    assert d.message == "`image.python` must be a string, not `3.10`"
    assert d.hint == 'Quote it: `"3.10"`'


def test_bool_for_int_is_wrong_type():
    d = one("train:\n  steps: true\n")
    assert d.message == "`train.steps` must be an integer, not `true`"


def test_union_errors_collapse_to_one_at_the_real_path():
    d = one("resources:\n  gpu: 5\n")
    assert (d.code, d.yaml_path) == ("MS103", ("resources", "gpu"))
    assert d.message == "`resources.gpu` must be a string or a list, not `5`"


def test_union_member_matching_the_value_type_wins():
    d = one("resources:\n  gpu: [H100, 8]\n")
    assert (d.code, d.yaml_path, where(d)) == ("MS103", ("resources", "gpu", 1), (5, 15))


def test_duration_union_gives_one_format_error():
    d = one("resources:\n  timeout: 2hours\n")
    assert (d.code, d.rule, d.yaml_path) == ("MS106", "invalid-format", ("resources", "timeout"))
    assert d.message == "`2hours` in `resources.timeout` is not a duration"
    assert d.hint == "Write it like `30m`, `2h`, `1h30m`"


def test_zero_duration_is_a_value_error_with_the_reason():
    d = one("distributed:\n  timeout: 0s\n")
    assert d.code == "MS106" and d.origin == "value_error"
    assert d.message == "`distributed.timeout` is `0s`: a duration must be at least 1 second"


def test_out_of_range_with_both_bounds():
    d = one("resources:\n  nodes: 0\n")
    assert (d.code, d.rule, where(d)) == ("MS104", "out-of-range", (5, 10))
    assert d.message == "`resources.nodes` must be at least 1, not `0`"
    assert d.hint == "Use a value from 1 to 32"


def test_too_short_collection():
    d = one("sweep:\n  matrix: {}\n")
    assert d.code == "MS104" and d.message == "`sweep.matrix` needs at least 1 entry; it has 0"


def test_invalid_choice_lists_sorted_values_and_suggests():
    d = one("train:\n  precision: bf61\n")
    assert (d.code, d.rule) == ("MS105", "invalid-choice")
    assert d.message == "`bf61` is not a valid `train.precision`; expected one of `bf16`, `fp32`"
    assert d.hint == "Did you mean `bf16`?"


def test_format_version_choice():
    d = one("", head="megaspec: 2\nname: demo\npreset: tiny\n")
    assert d.message == "`2` is not a valid `megaspec`; expected `1`" and d.hint == "Set `megaspec: 1`"


def test_name_format_hint():
    d = one("", head="megaspec: 1\nname: My Run\npreset: tiny\n")
    assert d.code == "MS106" and d.hint.startswith("Use lowercase letters")


def test_messages_never_show_python_internals():
    body = ("resources: {gpu: {a: 1}, nodes: x, cpu: '2'}\nvolumes: {cache: x}\nbuckets: 5\n"
            "sweep: {matrix: {a: [{}]}}\nbench: {sizes: [1.5]}\nimage: {env: {A: 1}}\n")
    diagnostics = check(body)
    assert sorted(d.yaml_path for d in diagnostics) == sorted([
        ("resources", "gpu"), ("resources", "nodes"), ("resources", "cpu"), ("volumes", "cache"), ("buckets",),
        ("sweep", "matrix", "a", 0), ("bench", "sizes", 0), ("image", "env", "A")])
    for d in diagnostics:
        text = f"{d.message} {d.hint}"
        for word in ("dict", "input_type", "Input should", "Volume", "constrained", "list[", "NoneType"):
            assert word not in text, (word, text)
        assert d.code != "MS100", d


@pytest.mark.parametrize("path, text", [((), "the spec"), (("a", 0, "b"), "a[0].b"), (("x",), "x")])
def test_dotted(path, text):
    assert dotted(path) == text
