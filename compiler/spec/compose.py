"""Stage 1b of the compiler: resolve `extends:` and `preset:` into one merged spec and source map.

Bases merge deeply (mappings recursively; lists and scalars are replaced), later bases override
earlier ones and the extending file overrides them all. The merged `SourceMap` points every value
at the file that actually provided it, so a bad value in `_base.yaml` is reported there. Then a
`preset:` fills the `model:` fields the user did not write. Problems come back as diagnostics
(MS009, MS010, MS102, MS105), never as exceptions.
"""

from __future__ import annotations

import functools
import os
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from megaspec.runtime.contract.presets import PRESETS, ModelDims

from .. import codes
from ..codes import Code, Stage
from ..diagnostics import Diagnostic, Related, Severity, Span, YamlPath, did_you_mean, listing
from .model_dims import preset_fill
from .near_files import did_you_mean_file
from .source import load_source, parse_text
from .source_map import NodeSpan, SourceMap

MODEL_FIELDS = tuple(f.name for f in fields(ModelDims))
MAX_EXTENDS_DEPTH = 32  # files in one `extends:` chain; real projects use one or two
BASE_SUFFIXES = (".yaml", ".yml")


@dataclass
class Composed:
    """One spec after `extends:` and `preset:`: merged data, merged source map, and where things came from."""

    path: str
    data: dict[str, Any] | None  # None when a file could not be read or parsed
    smap: SourceMap
    file_maps: dict[str, SourceMap] = field(default_factory=dict)  # each file's own map, for suppressions
    file_data: dict[str, Any] = field(default_factory=dict)  # each file's own data, for redaction
    files: list[str] = field(default_factory=list)  # display paths, the extending file first
    diagnostics: list[Diagnostic] = field(default_factory=list)
    preset: str | None = None
    preset_paths: frozenset[YamlPath] = frozenset()
    written: dict[str, Any] | None = None  # the merged data before the preset filled `model` (for sweeps)
    code_dir: Path | None = None  # the folder `model.code` is relative to: that of the file that wrote it

    @property
    def blocked(self) -> bool:
        """Whether parse or `extends:` errors make the merged data unfit for the model stage."""
        return self.data is None or any(d.is_error and d.stage is Stage.SOURCE for d in self.diagnostics)

    def origin(self, yaml_path: YamlPath) -> str:
        """Where an effective value came from: `specs/x.yaml:14`, "preset `dense-1b`" or "default"."""
        path = tuple(yaml_path)
        if path in self.preset_paths:
            return f"preset `{self.preset}`"
        node = self.smap.node(path)
        if node is None:
            return "default"
        span = node.key or node.value
        return f"{span.path}:{span.line}"


def is_base_file(path: str | Path) -> bool:
    """A base is a file whose name starts with `_` (`specs/_base.yaml`): shared settings, no `name`."""
    return Path(path).name.startswith("_")


def _error(code: Code, message: str, span: Span | None, hint: str, *,
           path: YamlPath = (), related: tuple[Related, ...] = ()) -> Diagnostic:
    return Diagnostic(code=code.code, rule=code.name, severity=Severity.ERROR, message=message, span=span,
                      yaml_path=path, hint=hint, related=related)


def deep_merge(base: Any, child: Any) -> Any:
    """Mappings merge recursively; anything else in `child` replaces what `base` had."""
    if isinstance(base, dict) and isinstance(child, dict):
        out = dict(base)
        for key, value in child.items():
            out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return child


def _extends_items(data: dict[str, Any], smap: SourceMap) -> list[tuple[str, Span | None, YamlPath]]:
    """The base paths a file names, each with the span of its `extends` item. Bad types are left to the model."""
    raw = data.get("extends")
    if isinstance(raw, str):
        return [(raw, smap.value_span(("extends",)), ("extends",))]
    if isinstance(raw, list):
        return [(item, smap.value_span(("extends", i)), ("extends", i))
                for i, item in enumerate(raw) if isinstance(item, str)]
    return []


@dataclass
class _Frame:
    real: Path
    display: str
    via: Span | None = None  # the `extends` item in this file that leads to the next frame


class _Resolver:
    """Depth-first `extends:` resolution with a stack for cycle detection.

    Each file is read and merged once (a diamond of bases is linear, not exponential), and a base
    must be a regular `.yaml`/`.yml` file inside `root`, so `extends:` never reads (or shows in a
    snippet) a device, a pipe, or a file such as `/proc/self/environ` or `../../etc/passwd`.
    """

    def __init__(self, spec: Path, text: str | None = None) -> None:
        self.spec = spec  # the resolved path of the file being composed
        self.text = text  # its text, when the caller has just written it (not read again)
        self.stack: list[_Frame] = []
        self.done: dict[Path, tuple[Any, list[SourceMap]]] = {}
        self.file_maps: dict[str, SourceMap] = {}
        self.file_data: dict[str, Any] = {}
        self.texts: dict[str, str] = {}
        self.files: list[str] = []
        self.real_of: dict[str, Path] = {}  # display path -> the file read
        self.diagnostics: list[Diagnostic] = []
        self.failed = False

    @functools.cached_property
    def root(self) -> Path:
        """The folder bases must be inside, looked for on the first `extends:` (a dozen `stat`s up the tree)."""
        return project_root(self.spec)

    def resolve(self, real: Path, display: str) -> tuple[Any, list[SourceMap]]:
        """Merged data of `display` and its bases, and the source maps in increasing precedence."""
        if real not in self.done:
            self.done[real] = self._resolve(real, display)
        return self.done[real]

    def _resolve(self, real: Path, display: str) -> tuple[Any, list[SourceMap]]:
        given = self.text is not None and real == self.spec
        source = parse_text(self.text, display) if given else load_source(real, display)
        self.texts.update(source.smap.texts)  # empty for a file that is no spec: it is never shown
        if display not in self.files:
            self.files.append(display)
        self.real_of[display] = real
        if source.data is None:
            self.failed = True
            self.diagnostics.extend(source.diagnostics)
            return None, []
        self.file_maps[display] = source.smap
        self.file_data[display] = source.data
        frame = _Frame(real, display)
        self.stack.append(frame)
        merged: Any = {}
        layers: list[SourceMap] = []
        for item, span, ypath in _extends_items(source.data, source.smap):
            frame.via = span
            base_data, base_layers = self._base(frame, item, span, ypath)
            if base_data is not None:
                merged = deep_merge(merged, base_data)
                layers.extend(base_layers)
        self.stack.pop()
        return deep_merge(merged, source.data), _last_occurrences([*layers, source.smap])

    def _base(self, frame: _Frame, item: str, span: Span | None, ypath: YamlPath) -> tuple[Any, list[SourceMap]]:
        display = os.path.normpath(os.path.join(os.path.dirname(frame.display), item))
        if len(self.stack) >= MAX_EXTENDS_DEPTH:
            return self._fail(codes.NESTING_TOO_DEEP,
                              f"`extends:` chains nest more than {MAX_EXTENDS_DEPTH} files deep", span, ypath,
                              "Extend one or two shared bases directly instead of a long chain")
        real, problem = _base_path(frame.real.parent, item, self.root)  # `self.root`: only a base needs it
        if real is None:
            code = codes.EXTENDS_NOT_FOUND if problem == "missing" else codes.EXTENDS_INVALID_PATH
            message = (f"base spec `{item}` does not exist (looked for `{display}`, resolved to "
                       f"{os.path.normpath(frame.real.parent / item)})" if problem == "missing"
                       else f"`extends: {_shown(item)}` cannot be used: {problem}")
            hint = (f"Check the path; `extends:` paths are relative to the file that names them.{did_you_mean_file(frame.real.parent / item, frame.real.parent)}"
                    if problem == "missing"
                    else f"Name a `.yaml` or `.yml` spec file inside the project (`{self.root}`), relative to "
                    "this file")
            return self._fail(code, message, span, ypath, hint)
        for other in self.stack:
            if other.real == real:
                self._cycle(other, item, span, ypath)
                return None, []
        return self.resolve(real, display)

    def _fail(self, code: Code, message: str, span: Span | None, ypath: YamlPath,
              hint: str) -> tuple[None, list[SourceMap]]:
        self.failed = True
        self.diagnostics.append(_error(code, message, span, hint, path=ypath))
        return None, []

    def _cycle(self, first: _Frame, item: str, span: Span | None, ypath: YamlPath) -> None:
        self.failed = True
        loop = [*self.stack[self.stack.index(first):], first]
        chain = " -> ".join(os.path.basename(f.display) for f in loop)  # full paths are in the spans
        related = (Related(span=first.via, message=f"`{os.path.basename(first.display)}` extends from here"),
                   ) if first.via else ()
        self.diagnostics.append(_error(
            codes.EXTENDS_CYCLE, f"`extends: {item}` makes a cycle: {chain}", span,
            "Remove one `extends:` entry so that bases form a tree", path=ypath, related=related))


def _last_occurrences(layers: list[SourceMap]) -> list[SourceMap]:
    """Each map once, at its last (highest-precedence) position: a base reached twice merged last there."""
    seen: set[int] = set()
    out = []
    for layer in reversed(layers):
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
    return out[::-1]


def _shown(item: str) -> str:
    """A base path for a message: control characters escaped, at most 80 characters."""
    text = item.encode("unicode_escape").decode("ascii")
    return text if len(text) <= 80 else f"{text[:40]}…{text[-20:]} ({len(item)} characters)"


def _base_path(folder: Path, item: str, root: Path) -> tuple[Path | None, str]:
    """The resolved base file, or None and why not (`missing`, or a reason for a message)."""
    if "\0" in item:
        return None, "the path holds a NUL character"
    if not item.endswith(BASE_SUFFIXES):
        return None, "a base must be a `.yaml` or `.yml` file"
    try:
        real = (folder / item).resolve()
        info = real.stat()
    except FileNotFoundError:
        return None, "missing"
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop on Python < 3.13
        errno_name = getattr(e, "strerror", None) or "a symlink loop"
        return None, f"the path cannot be opened ({errno_name.lower()})"
    if not real.is_relative_to(root):
        return None, "it is outside the project"
    if not stat.S_ISREG(info.st_mode):
        return None, "it is not a regular file"
    return real, ""


def project_root(spec: Path) -> Path:
    """The folder `extends:` may read from: the spec's git work tree, else the nearest folder with a
    pyproject.toml (the config's folder), else the spec's own folder."""
    folder = spec.parent
    for marker in (".git", "pyproject.toml"):
        for candidate in (folder, *folder.parents):
            if (candidate / marker).exists():
                return candidate
    return folder


def _merged_map(data: Any, layers: list[SourceMap], texts: dict[str, str]) -> SourceMap:
    """Point every merged path at the highest-precedence file that wrote it."""
    entries: dict[YamlPath, NodeSpan] = {}

    def visit(value: Any, path: YamlPath) -> None:
        for layer in reversed(layers):
            hit = layer.entries.get(path)
            if hit is not None:
                entries[path] = hit
                break
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            visit(child, (*path, key))

    visit(data, ())
    return SourceMap(entries=entries, texts=dict(texts))


def _apply_preset(composed: Composed, *, base: bool = False) -> None:
    """Fill `model.*` from the preset where the user did not write a value; report unknown presets.
    A spec needs a preset, every `model:` dimension or a `model.entry` (the user's own model, which no
    preset fills); a base file (`_*.yaml`) needs none of them."""
    data = composed.data
    assert data is not None
    name = data.get("preset")
    model = data.get("model", {})
    if not isinstance(model, dict) or (name is not None and not isinstance(name, str)):
        return  # wrong types are the model stage's to report
    if model.get("entry") is not None:
        return  # the user's own model: no preset fills it (MS218 reports a preset beside it)
    if name is None:
        if not base:
            _require_model(composed, model)
        return
    if name not in PRESETS:
        composed.diagnostics.append(_unknown_preset(name, composed.smap))
        del data["preset"]  # reported here; the model stage must not report it twice
        return
    train = data.get("train")
    filled = preset_fill(name, model, train.get("seq_len") if isinstance(train, dict) else None)
    data["model"] = {**model, **filled}
    composed.preset = name
    composed.preset_paths = frozenset(("model", k) for k in filled)


def _unknown_preset(name: str, smap: SourceMap) -> Diagnostic:
    hint = did_you_mean(name, PRESETS) or f"Use one of {listing(PRESETS)}"
    return Diagnostic(code=codes.INVALID_CHOICE.code, rule=codes.INVALID_CHOICE.name, severity=Severity.ERROR,
                      message=f"`{name}` is not a preset; expected one of {listing(PRESETS)}",
                      span=smap.value_span(("preset",)), yaml_path=("preset",), hint=hint, origin="literal_error")


def _require_model(composed: Composed, model: dict[str, Any]) -> None:
    missing = [f for f in MODEL_FIELDS if f not in model]
    if not missing:
        return
    more = f" (and {len(missing) - 1} more `model:` fields)" if len(missing) > 1 else ""
    presets = ", ".join(f"`{p}`" for p in PRESETS)
    composed.diagnostics.append(Diagnostic(
        code=codes.MISSING_KEY.code, rule=codes.MISSING_KEY.name, severity=Severity.ERROR,
        message=f"`model.{missing[0]}`{more} is not set and no `preset:` is given",
        span=composed.smap.key_span(("model",)), yaml_path=("model",),
        hint=f"Set `preset:` (one of {presets}) or give every `model:` field", origin="missing"))


def _code_dir(smap: SourceMap, real_of: dict[str, Path], spec: Path) -> Path:
    """The folder `model.code` is relative to: that of the file that wrote it (the spec, or a base it extends)."""
    span = smap.value_span(("model", "code"))
    writer = real_of.get(span.path) if span is not None else None
    return (writer or spec).parent


def compose(path: str | Path, display: str | None = None, *, text: str | None = None) -> Composed:
    """Load `path` (or take its `text`, when the caller wrote it), resolve its `extends:` chain and its `preset:`."""
    shown = display or str(path)
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: load_source says why it cannot be read
        real = Path(os.path.abspath(path))
    resolver = _Resolver(real, text)
    data, layers = resolver.resolve(real, shown)
    if data is None:
        smap = SourceMap(texts=dict(resolver.texts))
        return Composed(shown, None, smap, resolver.file_maps, resolver.file_data, resolver.files,
                        resolver.diagnostics)
    composed = Composed(shown, data, _merged_map(data, layers, resolver.texts), resolver.file_maps,
                        resolver.file_data, resolver.files, resolver.diagnostics)
    composed.code_dir = _code_dir(composed.smap, resolver.real_of, real)
    composed.written = dict(data)  # the preset replaces `model` with a new dict; nothing below is mutated
    if not resolver.failed:
        _apply_preset(composed, base=is_base_file(path))
    return composed
