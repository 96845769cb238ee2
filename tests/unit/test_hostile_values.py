"""Values that were accepted though unusable, or crashed the linter (issue 11): each is now a located
MS1xx/MS5xx diagnostic with a fix, found in well under a second."""

from __future__ import annotations

import time
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.spec import model
from megaspec.compiler.spec.name_template import MAX_VALUE_CHARS, NameTemplateError, render_names

SPEC = "megaspec: 1\nname: run\ntarget: local\npreset: tiny\nresources: {ranks: 1}\n"
SWEEP = "sweep:\n  matrix: {train.lr: [1.0e-4, 2.0e-4]}\n  name: %s\n"


def lint(tmp_path: Path, extra: str) -> list:
    path = tmp_path / "run.yaml"
    path.write_text(SPEC + extra, encoding="utf-8")
    start = time.process_time()  # this process's CPU time: the work done, which other processes' load does not stretch
    found = check_spec(path).diagnostics
    assert time.process_time() - start < 1.0
    assert all(d.span is not None and d.hint for d in found), found
    return found


@pytest.mark.parametrize(("template", "code", "words"), [
    ("'{{ name | nofilter }}'", "MS502", "the filter `nofilter`"),
    ("'{% for i in range(100000000) %}x{% endfor %}'", "MS502", "a `for` loop"),
    ("'{{ range(10) }}'", "MS502", "a function call"),
    ("'{{ name.ljust(400000000) }}'", "MS502", "a function call"),
    ("'{{ \"x\" * 400000000 }}'", "MS504", "more characters than a name"),
    ("'{{ [name] * 400000000 }}'", "MS504", "more characters than a name"),
    ("'{{ \"%0400000000d\" % 1 }}'", "MS504", "wider than a name"),
    ("'{{ \"%0400000000d\" | format(1) }}'", "MS504", "wider than a name"),
    ("'{{ (name * 60) | replace(\"\", name * 60) }}'", "MS504", "`replace`"),
    ("'{{ 10 ** 100000000 }}'", "MS504", "power too large"),
    ("'{{ matrix[\"train.lr\"] + \"x\" }}'", "MS504", "rendering it fails"),
    ("'{{ name | int }}'", "MS504", None),  # renders `0`: the same name twice
])
def test_name_templates_are_bounded_and_never_crash(tmp_path: Path, template: str, code: str,
                                                    words: str | None) -> None:
    found = lint(tmp_path, SWEEP % template)
    assert [d.code for d in found] == [code], found
    assert words is None or words in found[0].message
    assert found[0].span.line == 8 and len(found[0].message) < 400


def test_render_names_caps_every_output() -> None:
    with pytest.raises(NameTemplateError):
        render_names("x" * (MAX_VALUE_CHARS + 1), [{"matrix": {}, "name": "n"}])
    assert render_names("{{ name }}-{{ matrix['a'] | replace('.', 'p') }}",
                        [{"matrix": {"a": 0.5}, "name": "n"}]) == ["n-0p5"]


def test_a_matrix_product_is_counted_not_expanded(tmp_path: Path) -> None:
    values = ", ".join(str(i + 1) for i in range(1000))
    found = lint(tmp_path, f"sweep:\n  matrix: {{train.steps: [{values}], train.seed: [{values}], "
                           f"train.log_every: [{values}], train.warmup_steps: [{values}]}}\n")
    assert [d.code for d in found] == ["MS104"]
    assert "1,000,000,000,000 combinations" in found[0].message and f"{model.MAX_SWEEP_RUNS:,}" in found[0].message


@pytest.mark.parametrize(("env", "key"), [('""', ""), ('"A=B"', "A=B"), ('"A\\0"', "A\\x00"), ("1X", "1X")])
def test_env_names_must_be_names(tmp_path: Path, env: str, key: str) -> None:
    found = lint(tmp_path, f"image:\n  env: {{{env}: x}}\n")
    assert [d.code for d in found] == ["MS106"]
    assert found[0].message == f"`{key}` in `image.env` is not an environment variable name"
    assert (found[0].span.line, found[0].span.col) == (7, 9)


@pytest.mark.parametrize("extra", [
    'data: {source: shards, path: "/vol/a\\0b"}\n',
    'image: {packages: ["torch\\0==2.8.0"]}\n',
    'image: {env: {A: "x\\0y"}}\n',
    'buckets: {b: {bucket: "my\\0b", mount: /mnt/b}}\n',
    'secrets: ["x\\0"]\n',
])
def test_nul_is_refused_in_every_string(tmp_path: Path, extra: str) -> None:
    assert [d.code for d in lint(tmp_path, extra)] == ["MS106"]


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN"])
@pytest.mark.parametrize("field", ["lr", "grad_clip", "weight_decay", "min_lr_ratio"])
def test_every_float_is_finite(tmp_path: Path, field: str, value: str) -> None:
    found = lint(tmp_path, f"train: {{{field}: {value}}}\n")
    assert [d.code for d in found] == ["MS104"] and "finite" in found[0].message


def test_huge_integers_are_out_of_range(tmp_path: Path) -> None:
    found = lint(tmp_path, f"train: {{global_batch: {2**1100}, steps: 400}}\n")
    assert [d.code for d in found] == ["MS104"] and "at most 1048576" in found[0].message


def _int_fields(cls: type[BaseModel], prefix: str = "") -> typing.Iterator[tuple[str, typing.Any, list]]:
    """Every field (recursively) whose type admits an int, with its constraint metadata."""
    for name, info in cls.model_fields.items():
        for member, metadata in _members(info.annotation, list(info.metadata)):
            if isinstance(member, type) and issubclass(member, BaseModel):
                yield from _int_fields(member, f"{prefix}{name}.")
            elif member is int:
                yield f"{prefix}{name}", member, metadata


def _members(annotation: typing.Any, metadata: list) -> list[tuple[typing.Any, list]]:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata = metadata + [c for m in extra for c in (getattr(m, "metadata", None) or [m])]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, type(int | str)):
        return [m for arg in args for m in _members(arg, metadata)]
    if typing.get_origin(annotation) in (list, dict):
        return _members(args[-1], [])
    return [(annotation, metadata)]


def test_every_integer_field_has_an_upper_bound() -> None:
    """A family check: a field added without `le` (or a bounding validator) fails here."""
    unbounded = [name for name, _, metadata in _int_fields(model.Spec)
                 if not any(getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None
                            or "duration" in repr(m) for m in metadata)]
    assert unbounded == ["sweep.matrix", "sweep.include", "sweep.exclude"]  # sweep values: checked per run


def test_floats_refuse_inf_and_nan_in_every_section() -> None:
    assert model.Section.model_config["allow_inf_nan"] is False


@pytest.mark.parametrize("fmt", ["human", "concise", "github"])
def test_control_characters_in_values_are_escaped_in_terminal_formats(tmp_path: Path, fmt: str) -> None:
    from megaspec.compiler.lint.report import render_report

    path = tmp_path / "run.yaml"
    path.write_text(SPEC + 'train: {"\\e[2J\\rforged\\u2028x": 1}\n', encoding="utf-8")  # a key: shown parsed
    checked = check_spec(path)
    assert [d.code for d in checked.diagnostics] == ["MS101"]
    text = render_report(fmt, checked.diagnostics, texts=checked.smap.texts, num_files=1)
    assert "\x1b" not in text and "\r" not in text and "\u2028" not in text
    assert "\\x1b[2J\\rforged\\u2028x" in text


@pytest.mark.parametrize(("value", "code", "hint"), [
    ("9" * 4000, "MS104", "Write `megaspec: 1`"),  # past pydantic's integer size: was MS100 with no fix
    ("true", "MS106", "Write `megaspec: 1`"),
])
def test_found_by_the_fuzzer_every_schema_diagnostic_has_a_fix(tmp_path: Path, value: str, code: str,
                                                                hint: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(SPEC.replace("megaspec: 1", f"megaspec: {value}"), encoding="utf-8")
    found = check_spec(path).diagnostics
    assert [(d.code, d.hint) for d in found] == [(code, hint)]
