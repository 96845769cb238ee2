"""Lint rules MS5xx, sweep templates: matrix paths, include/exclude keys, the name template and run names.

`megaspec sweep` (compiler/spec/expand.py) expands a template into runs; these rules check the template
itself, so a typo in one dotted path is one located error instead of N runs that silently ignore
the setting.
"""

from __future__ import annotations

import re
import types
import typing

from pydantic import BaseModel

from ...diagnostics import closest, did_you_mean, listing
from ...spec.model import Spec
from .registry import RuleContext, rule

UNSWEEPABLE = {"megaspec", "name", "extends", "sweep"}  # `name` comes from `sweep.name`
TEMPLATE_NAMES = {"matrix", "name"}


def _model_of(annotation) -> tuple[type[BaseModel] | None, bool]:
    """(the section model inside an annotation, whether it sits under a `dict[str, ...]`)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found[0] is not None:
                return found
        return None, False
    if origin is dict:
        inner, _ = _model_of(typing.get_args(annotation)[1])
        return inner, inner is not None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _fields(model: type[BaseModel]) -> dict[str, object]:
    """YAML key -> annotation (the `validate:` section is the field `validate_`)."""
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def is_spec_path(dotted: str) -> bool:
    """Whether `train.lr`-style `dotted` names a settable leaf of the spec."""
    parts = dotted.split(".")
    if not parts[0] or parts[0] in UNSWEEPABLE:
        return False
    model: type[BaseModel] | None = Spec
    i = 0
    while i < len(parts):
        if model is None or parts[i] not in _fields(model):
            return False
        model, keyed = _model_of(_fields(model)[parts[i]])
        i += 2 if keyed else 1  # `buckets.<key>.mount`: any key, then the bucket's field
    return model is None


def spec_paths(spec: Spec, model: type[BaseModel] = Spec, prefix: str = "") -> list[str]:
    """Every settable leaf path, for did-you-mean (bucket paths use the spec's bucket keys)."""
    out = []
    for key, annotation in _fields(model).items():
        if not prefix and key in UNSWEEPABLE:
            continue
        inner, keyed = _model_of(annotation)
        if inner is None:
            out.append(prefix + key)
        elif keyed:
            for bucket in spec.buckets:
                out.extend(spec_paths(spec, inner, f"{prefix}{key}.{bucket}."))
        else:
            out.extend(spec_paths(spec, inner, f"{prefix}{key}."))
    return out


def _suggest(key: str, paths: list[str]) -> str:
    """Did-you-mean on the last segment within the key's section, else on the whole path."""
    section, _, leaf = key.rpartition(".")
    same = {p.rpartition(".")[2]: p for p in paths if section and p.startswith(section + ".")}
    if same:
        close = closest(leaf, same)
        if close:
            return f"Did you mean `{same[close]}`?"
        return f"Use one of the `{section}` settings: {listing(same, 16)}"
    return did_you_mean(key, paths) or "Use a dotted path to a setting, like `train.lr`"


@rule("MS501", "sweep-unknown-path")
def sweep_unknown_path(ctx: RuleContext) -> None:
    """Checks that every `sweep.matrix` key is a dotted path to a spec setting.

    Why: each matrix key is written into every run's spec. A typo (`train.learning_rate`) would
    be rejected N times after expansion, or worse, sweep nothing while the runs look different.

    Example:
        sweep: {matrix: {train.learning_rate: [1.0e-4, 3.0e-4]}}

    Use instead:
        sweep: {matrix: {train.lr: [1.0e-4, 3.0e-4]}}
    """
    if ctx.spec.sweep is None:
        return
    for key in ctx.spec.sweep.matrix:
        if not is_spec_path(key):
            hint = _suggest(key, spec_paths(ctx.spec))
            ctx.report(("sweep", "matrix", key), f"`{key}` is not a spec setting that a sweep can vary",
                       key=True, hint=hint)


def _matrix_refs(ast) -> list[str]:
    """Keys read as `matrix['key']` or `matrix.key` in a parsed template."""
    from jinja2 import nodes

    refs = []
    for node in ast.find_all((nodes.Getitem, nodes.Getattr)):
        if isinstance(node.node, nodes.Name) and node.node.name == "matrix":
            if isinstance(node, nodes.Getattr):
                refs.append(node.attr)
            elif isinstance(node.arg, nodes.Const):
                refs.append(str(node.arg.value))
    return refs


@rule("MS502", "sweep-name-template-error")
def sweep_name_template_error(ctx: RuleContext) -> None:
    """Checks that `sweep.name` is a Jinja2 template using only `matrix[...]` and `name`.

    Why: every run's name comes from this template; a syntax error or an unknown variable would
    fail expansion, or give every run the same name so their manifests overwrite each other. A
    name is short, so the template has `if` and string and number filters but no loops, calls or
    globals, and nothing in it may build more than 4,096 characters: linting stays fast whatever
    the template says.

    Example:
        sweep: {matrix: {train.lr: [1.0e-4]}, name: "lr{{ lr }}"}

    Use instead:
        sweep: {matrix: {train.lr: [1.0e-4]}, name: "{{ name }}-lr{{ matrix['train.lr'] }}"}
    """
    sweep = ctx.spec.sweep
    if sweep is None or sweep.name is None:
        return
    for message, hint in _template_problems(sweep):
        ctx.report(("sweep", "name"), message, hint=hint)


def _template_problems(sweep) -> list[tuple[str, str]]:
    """(message, hint) for each thing wrong with `sweep.name` itself, before any run is named."""
    from jinja2 import meta

    from ...spec.name_template import NameTemplateError, checked_ast

    try:
        ast = checked_ast(sweep.name)
    except NameTemplateError as e:
        return [(f"`sweep.name` cannot be used: {e}", "Fix the template; write values as `{{ matrix['train.lr'] }}`")]
    problems = [(f"`sweep.name` uses `{var}`; only `matrix[...]` and `name` are defined",
                 "Write matrix values as `{{ matrix['<path>'] }}`, e.g. `{{ matrix['train.lr'] }}`")
                for var in sorted(meta.find_undeclared_variables(ast) - TEMPLATE_NAMES)]
    problems += [(f"`sweep.name` reads `matrix['{ref}']`, which is not a `sweep.matrix` key",
                  did_you_mean(ref, list(sweep.matrix)) or "Use a key of `sweep.matrix`")
                 for ref in _matrix_refs(ast) if ref not in sweep.matrix]
    return problems


@rule("MS503", "sweep-exclude-unknown-key")
def sweep_exclude_unknown_key(ctx: RuleContext) -> None:
    """Checks that `sweep.include` and `sweep.exclude` entries use only matrix keys.

    Why: an entry is matched against the matrix combinations by its keys; a key that is not in
    the matrix (a typo, or a path written differently) never matches, so the exclusion silently
    does nothing and the excluded runs are launched and paid for.

    Example:
        sweep:
          matrix: {train.lr: [1.0e-4, 3.0e-4]}
          exclude: [{train.learning_rate: 3.0e-4}]

    Use instead:
        sweep:
          matrix: {train.lr: [1.0e-4, 3.0e-4]}
          exclude: [{train.lr: 3.0e-4}]
    """
    sweep = ctx.spec.sweep
    if sweep is None:
        return
    for section in ("include", "exclude"):
        for i, entry in enumerate(getattr(sweep, section)):
            for key in entry:
                if key not in sweep.matrix:
                    ctx.report(("sweep", section, i, key), f"`sweep.{section}` key `{key}` is not a "
                               "`sweep.matrix` key", key=True,
                               hint=did_you_mean(key, list(sweep.matrix)) or "Use a key of `sweep.matrix`")


@rule("MS504", "sweep-run-name")
def sweep_run_name(ctx: RuleContext) -> None:
    """Checks that every run of the sweep gets a valid name of its own.

    Why: a run's name names its Modal app, its build folder and its expanded spec file. Two runs
    with one name overwrite each other's files, so one of them is silently never launched; a name
    with `/` or capitals (from a matrix value) is no file name and no Modal app name.

    Example:
        sweep:
          matrix: {train.lr: [1.0e-4, 3.0e-4], train.global_batch: [32, 64]}
          name: "{{ name }}-lr{{ matrix['train.lr'] }}"

    Use instead:
        sweep:
          matrix: {train.lr: [1.0e-4, 3.0e-4], train.global_batch: [32, 64]}
          name: "{{ name }}-lr{{ matrix['train.lr'] }}-gb{{ matrix['train.global_batch'] }}"
    """
    sweep = ctx.spec.sweep
    if sweep is None:
        return
    from megaspec.runtime.contract.vocabulary import NAME_PATTERN

    from ...spec.expand import combinations, describe, run_names
    from ...spec.name_template import NameTemplateError

    combos = combinations(sweep.matrix, sweep.include, sweep.exclude)
    where = ("sweep", "name") if sweep.name is not None else ("name",)
    try:
        names = run_names(sweep.name, ctx.spec.name, combos)
    except NameTemplateError as e:
        if _template_problems(sweep):
            return  # MS502 reports the template itself
        ctx.report(where, f"`sweep.name` cannot name the runs: {e}",
                   hint="Use only `matrix[...]`, `name` and string filters, e.g. `{{ matrix['train.lr'] }}`")
        return
    first: dict[str, int] = {}
    for index, (name, values) in enumerate(zip(names, combos, strict=True), start=1):
        if not re.fullmatch(NAME_PATTERN, name):
            shown = name if len(name) <= 80 else f"{name[:60]}… ({len(name):,} characters)"
            ctx.report(where, f"run {index} of the sweep ({describe(values)}) would be named `{shown}`, which is "
                       "not a valid name", hint="A name is up to 63 lowercase letters, digits and `.-_`, starting "
                       "with a letter or digit; format or replace the matrix values in `sweep.name`")
            return
        if name in first:
            ctx.report(where, f"runs {first[name]} and {index} of the sweep are both named `{name}` "
                       f"(run {index}: {describe(values)})",
                       hint="Put every `sweep.matrix` key in `sweep.name`, e.g. `-gb{{ matrix['train.global_batch'] }}`")
            return
        first[name] = index
