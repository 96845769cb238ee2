"""Stage 4 (suppressions): comments bind to YAML nodes lexically; unused/unknown/malformed are reported."""

from __future__ import annotations

from pathlib import Path

from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.lint.suppress import scan
from megaspec.compiler.spec.source import parse_text
from tests.conftest import CLEAN_SPEC

CLEAN = CLEAN_SPEC


def lint(tmp_path: Path, text: str, name: str = "s.yaml"):
    (tmp_path / name).write_text(text)
    return check_spec(tmp_path / name, display=name)


def codes(checked) -> list[tuple[str, int]]:
    return [(d.code, d.span.line) for d in checked.diagnostics]


def test_the_clean_base_spec_is_clean(tmp_path):
    assert codes(lint(tmp_path, CLEAN + "resources:\n  ranks: 2\n")) == []


def test_unsuppressed_error_is_reported(tmp_path):
    assert codes(lint(tmp_path, CLEAN + "resources:\n  nodes: 0\n")) == [("MS104", 8)]


def test_own_line_comment_binds_to_the_next_key(tmp_path):
    text = CLEAN + "resources:\n  # megaspec: ignore[MS104] two nodes are coming\n  nodes: 0\n"
    assert codes(lint(tmp_path, text)) == []


def test_own_line_comment_covers_the_subtree_of_the_next_key(tmp_path):
    text = CLEAN + "# megaspec: ignore[MS104]\nresources:\n  nodes: 0\n  retries: 99\n"
    assert codes(lint(tmp_path, text)) == []


def test_own_line_comment_does_not_reach_the_key_after_next(tmp_path):
    text = CLEAN + "resources:\n  # megaspec: ignore[MS104]\n  ranks: 0\n  nodes: 0\n"
    assert codes(lint(tmp_path, text)) == [("MS104", 10)]


def test_trailing_comment_binds_to_the_key_on_its_line(tmp_path):
    text = CLEAN + "resources:\n  nodes: 0  # megaspec: ignore[MS104] on purpose\n  retries: 99\n"
    assert codes(lint(tmp_path, text)) == [("MS104", 9)]


def test_file_ignore_with_a_prefix(tmp_path):
    text = "# megaspec: file-ignore[MS1] draft\n" + CLEAN + "resources:\n  nodes: 0\n  retries: 99\n"
    assert codes(lint(tmp_path, text)) == []


def test_wrong_code_does_not_suppress(tmp_path):
    text = CLEAN + "resources:\n  nodes: 0  # megaspec: ignore[MS103]\n"
    assert codes(lint(tmp_path, text)) == [("MS104", 8)]


def test_unused_suppression_is_a_warning(tmp_path):
    text = CLEAN + "resources:\n  ranks: 2  # megaspec: ignore[MS104]\n"
    [d] = lint(tmp_path, text).diagnostics
    assert (d.code, d.rule, str(d.severity), d.span.line, d.span.col) == (
        "MS090", "unused-suppression", "warning", 8, 13)


def test_unknown_code_in_suppression(tmp_path):
    text = CLEAN + "resources:\n  ranks: 2  # megaspec: ignore[MS999]\n"
    [d] = lint(tmp_path, text).diagnostics
    assert (d.code, d.span.line) == ("MS091", 8) and "`MS999`" in d.message


def test_malformed_suppressions(tmp_path):
    text = CLEAN + "# megaspec: ignore\nresources:\n  ranks: 2  # megaspec: silence[MS104]\n"
    found = lint(tmp_path, text).diagnostics
    assert [(d.code, d.span.line) for d in found] == [("MS092", 7), ("MS092", 9)]


def test_suppression_in_a_base_applies_to_values_from_the_base(tmp_path):
    (tmp_path / "_base.yaml").write_text("resources:\n  nodes: 0  # megaspec: ignore[MS104] shared quirk\n")
    checked = lint(tmp_path, "extends: _base.yaml\n" + CLEAN)
    assert codes(checked) == []


def test_binding_uses_source_map_lines_not_ruamel_comments():
    text = "train:\n  steps: 1\n  # megaspec: ignore[MS201]\n  warmup_steps: 2\n"
    src = parse_text(text, "s.yaml")
    [s] = scan("s.yaml", text, src.smap, {"MS201"}).items
    assert s.target == ("train", "warmup_steps")  # ruamel would attach it to `steps`


def test_list_item_and_flow_lines_bind_to_the_outermost_node():
    text = "checkpoint: {every: 1}  # megaspec: ignore[MS201]\nsecrets:\n  - a  # megaspec: ignore[MS201]\n"
    src = parse_text(text, "s.yaml")
    targets = [s.target for s in scan("s.yaml", text, src.smap, {"MS201"}).items]
    assert targets == [("checkpoint",), ("secrets", 0)]
