"""Sweep expansion: one template spec -> one standalone spec file per matrix combination.

Combinations are the cartesian product of `sweep.matrix` (keys in written order, values in
written order), minus every combination that matches an `exclude` entry on all of the entry's
keys, plus each `include` entry that is not already one of them (MS503 keeps include and exclude
keys to matrix keys, as in GitHub Actions matrices without extra keys).

A run is the template as written with its bases folded in (`extends:` resolved, the preset left
as a name), the combination's values set at their dotted paths, `name` rendered from `sweep.name`
(default `<name>-<index>`, `001` on) with the template's name in front (`run_label`), and no
`extends:` or `sweep:`. So a run file stands alone, reads like
a hand-written spec, and goes through `lint`, `compile` and `apply` like any other.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from megaspec.runtime.contract.user_code import code_folders

Scalar = str | int | float | bool
DROPPED_KEYS = ("extends", "sweep")


@dataclass(frozen=True)
class SweepRun:
    index: int  # 1-based, in expansion order
    name: str
    values: dict[str, Scalar]  # matrix key -> value
    data: dict[str, Any]  # the run's spec, ready to write


def combinations(matrix: dict[str, list[Scalar]], include: list[dict[str, Scalar]],
                 exclude: list[dict[str, Scalar]]) -> list[dict[str, Scalar]]:
    """The matrix product minus `exclude` matches, plus `include` entries not already present."""
    keys = list(matrix)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*matrix.values())]
    combos = [c for c in combos if not any(_matches(c, entry) for entry in exclude)]
    for entry in include:
        if not any(_same(c, entry) for c in combos):
            combos.append(dict(entry))
    return combos


def _same_value(a: Scalar, b: Scalar) -> bool:
    return type(a) is type(b) and a == b  # `true` is not `1`, `1` is not `1.0`


def _matches(combo: dict[str, Scalar], entry: dict[str, Scalar]) -> bool:
    return all(key in combo and _same_value(combo[key], value) for key, value in entry.items())


def _same(combo: dict[str, Scalar], entry: dict[str, Scalar]) -> bool:
    return combo.keys() == entry.keys() and _matches(combo, entry)


def _set_path(data: dict[str, Any], dotted: str, value: Scalar) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}  # copy: the template stays intact
        node = child
    node[leaf] = value


def run_label(sweep_name: str, name: str) -> str:
    """A run's name with the sweep's name in front (unless it is there already): runs of two sweeps
    never collide. `sweep --dry-run`, `megaspec sweep`, `apply TEMPLATE` and `apply DIR` all name runs so."""
    return name if name == sweep_name or name.startswith(f"{sweep_name}-") else f"{sweep_name}-{name}"


def run_names(template: str | None, base_name: str, combos: list[dict[str, Scalar]]) -> list[str]:
    """Each run's name: `sweep.name` rendered (or `<name>-<index>`), labelled with the template's name.
    Raises NameTemplateError (MS502 and MS504 report it) for a template that is invalid, unbounded,
    or fails to render."""
    if template is None:
        return [f"{base_name}-{index:03d}" for index in range(1, len(combos) + 1)]
    from .name_template import render_names

    rendered = render_names(template, [{"matrix": values, "name": base_name} for values in combos])
    return [run_label(base_name, name) for name in rendered]


def describe(values: dict[str, Scalar]) -> str:
    """`train.lr=0.0003, train.global_batch=64`: one run's matrix values, for people."""
    return ", ".join(f"{key}={value}" for key, value in values.items())


def expand(template: dict[str, Any], base_name: str, sweep: Any, spec_dir: Path | None = None) -> list[SweepRun]:
    """Every run of a lint-clean template (MS504 made sure each has a valid name of its own), keys in spec order.
    `spec_dir`: the template's folder; `model.code` folders, relative to it, become absolute in the runs, which
    are written elsewhere."""
    from .model import Spec

    order = [field.alias or name for name, field in Spec.model_fields.items()]
    data = {k: template[k] for k in sorted(template, key=order.index) if k not in DROPPED_KEYS}
    model = data.get("model")
    if spec_dir is not None and isinstance(model, dict) and isinstance(model.get("code"), list):
        data["model"] = {**model, "code": [str(f) for f in code_folders(spec_dir, model["code"])]}
    combos = combinations(sweep.matrix, sweep.include, sweep.exclude)
    runs = []
    for index, (values, name) in enumerate(zip(combos, run_names(sweep.name, base_name, combos), strict=True), 1):
        run = {**data}
        for key, value in values.items():
            _set_path(run, key, value)
        runs.append(SweepRun(index, name, values, {**run, "name": name}))
    return runs


@functools.cache
def _dumper(explicit_start: bool = False):
    """One YAML dumper per process, with the C emitter where installed (same text, ~3x faster on 1,000 runs)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import SafeRepresenter
    from ruamel.yaml.tag import Tag

    tags: dict[str, Tag] = {}

    def tag_of(tag: object) -> object:
        """One Tag per tag name: ruamel URI-decodes a new Tag's name one character at a time when the
        serializer reads it (a third of dumping a spec); a Tag does it once and keeps the result."""
        return tags.setdefault(tag, Tag(suffix=tag)) if isinstance(tag, str) else tag

    class Representer(SafeRepresenter):
        def represent_scalar(self, tag, value, style=None, anchor=None):
            return super().represent_scalar(tag_of(tag), value, style, anchor)

        def represent_sequence(self, tag, sequence, flow_style=None):
            return super().represent_sequence(tag_of(tag), sequence, flow_style)

        def represent_mapping(self, tag, mapping, flow_style=None):
            return super().represent_mapping(tag_of(tag), mapping, flow_style)

    yaml = YAML(typ="safe")
    yaml.Representer = Representer
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.explicit_start = explicit_start
    return yaml


def _dump(data: dict[str, Any]) -> str:
    import io

    out = io.StringIO()
    _dumper().dump(data, out)
    return out.getvalue()


def _dump_each(docs: list[dict[str, Any]]) -> list[str] | None:
    """Each mapping's `_dump` text, from one dump of them all (each dump call builds its emitter, a
    class included); None if the stream does not split back into one text per mapping."""
    import io
    import re

    out = io.StringIO()
    _dumper(explicit_start=True).dump_all(docs, out)
    texts = re.split(r"^---\n", out.getvalue(), flags=re.MULTILINE)
    return texts[1:] if len(texts) == len(docs) + 1 and texts[0] == "" else None


def run_texts(datas: list[dict[str, Any]]) -> list[str]:
    """Each run's YAML: the text of dumping it, with each top-level entry the runs share dumped once.

    A block mapping's top-level entries are written independently of each other, so a run's YAML is
    the concatenation of its entries' YAML. Runs share every top-level value the matrix does not touch
    (the same object: `expand` copies only the path to a swept value) and most scalars, so the
    sweep's distinct entries are dumped once each, in one stream. A run in which one list or mapping
    appears twice (YAML would write an anchor) is dumped whole.
    """
    index: dict[tuple, int] = {}
    entries: list[dict[str, Any]] = []  # keeps each shared value alive, so its id stays its own
    plans: list[list[int] | None] = []
    for data in datas:
        if _has_shared_containers(data):
            plans.append(None)
            continue
        plan = []
        for key, value in data.items():
            ident = (key, id(value)) if isinstance(value, dict | list) else (key, type(value), repr(value))
            if ident not in index:
                index[ident] = len(entries)
                entries.append({key: value})
            plan.append(index[ident])
        plans.append(plan)
    texts = _dump_each(entries)
    if texts is None:
        return [_dump(data) for data in datas]
    return [_dump(data) if plan is None else "".join(texts[i] for i in plan) for data, plan in zip(datas, plans, strict=True)]


def _has_shared_containers(data: Any) -> bool:
    seen: set[int] = set()
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict | list):
            if id(node) in seen:
                return True
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return False


def run_text(run: SweepRun, template_path: str, total: int, body: str | None = None) -> str:
    """The run's spec file: a header that says where it came from, then its YAML (`body`, if dumped already)."""
    body = _dump(run.data) if body is None else body
    return (f"{header_line(template_path)}{run.index} of {total} ({one_line(describe(run.values))}).\n"
            f"{EDIT_LINE}\n{body}")


EDIT_LINE = "# Edit the template and expand it again; changes made here are overwritten."


def one_line(text: str) -> str:
    """`text` for a `#` comment: a newline (or any control character) escaped, so it cannot end the comment."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def header_line(template_path: str) -> str:
    """The start of every run file's first line; `megaspec sweep` removes only files that carry it."""
    return f"# Generated by `megaspec sweep` from {one_line(template_path)}: run "


def applied_text(checked) -> str:
    """A checked spec as one file, as `apply` stores it in the run folder for `megaspec rerun`: its own
    text when it extends nothing (comments kept), else its data with the bases folded in (no `extends:`)."""
    files, texts = checked.files, checked.smap.texts
    if len(files) == 1 and files[0] in texts:
        return texts[files[0]]
    data = {k: v for k, v in (checked.composed.written or {}).items() if k != "extends"}
    return f"# {one_line(checked.path)} as applied, its bases ({one_line(', '.join(files[1:]))}) folded in\n" + _dump(data)


def run_files(runs: list[SweepRun], template_path: str) -> list[str]:
    """Each run's file text: its header, then its YAML (the entries the runs share dumped once)."""
    bodies = run_texts([run.data for run in runs])
    return [run_text(run, template_path, len(runs), body) for run, body in zip(runs, bodies, strict=True)]


def write_runs(runs: list[SweepRun], out_dir: Path, template_path: str, links_from: Path | None = None,
               texts: list[str] | None = None) -> list[Path]:
    """One `<run name>.yaml` per run (`texts`: `run_files`' texts, when the caller keeps them), each
    written atomically; no folder below `links_from` (default: `out_dir`) may be a symbolic link (WriteRefused)."""
    from megaspec.runtime.contract.files import refuse_links, write_text_atomic

    refuse_links(out_dir if links_from is None else links_from, out_dir)
    texts = run_files(runs, template_path) if texts is None else texts
    return [write_text_atomic(out_dir / f"{run.name}.yaml", text, durable=False)
            for run, text in zip(runs, texts, strict=True)]
