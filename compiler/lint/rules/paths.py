"""Shared facts for the lint rules: where things are mounted, how many ranks run, the model dims.

Rules ask these questions of the validated Spec; keeping the answers in one place means two rules
never disagree about, say, whether `/vol/data/tokens` is on a Volume.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from megaspec.runtime.presets import PRESETS

from ...diagnostics import YamlPath
from ...spec.gpu import gpu_list, parse_gpu
from ...spec.model import Spec

VOLUME_KINDS = ("cache", "checkpoints", "data", "home")


@dataclass(frozen=True, slots=True)
class Mount:
    kind: str  # "volume" | "bucket"
    key: str  # the Volume's kind ("cache") or the bucket's key under `buckets:`
    name: str  # the Modal Volume name or the bucket name
    path: str  # normalized absolute mount path
    yaml_path: YamlPath  # where the mount path is written

    @property
    def label(self) -> str:
        return f"{'volumes' if self.kind == 'volume' else 'buckets'}.{self.key}"


def normalize(path: str) -> str:
    return posixpath.normpath(path) if path.startswith("/") else path


def is_under(path: str, root: str) -> bool:
    """Whether `path` is `root` or inside it (POSIX, normalized)."""
    path, root = normalize(path), normalize(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def mounts(spec: Spec) -> list[Mount]:
    """Every Volume and bucket mount, in the order they appear in the spec model."""
    out = []
    for kind in VOLUME_KINDS:
        vol = getattr(spec.volumes, kind)
        if vol is not None:
            out.append(Mount("volume", kind, vol.name, normalize(vol.mount), ("volumes", kind, "mount")))
    for key, bucket in spec.buckets.items():
        out.append(Mount("bucket", key, bucket.bucket, normalize(bucket.mount), ("buckets", key, "mount")))
    return out


def mount_of(spec: Spec, path: str, kind: str | None = None) -> Mount | None:
    """The innermost mount (of `kind`, when given) that `path` lies under."""
    hits = [m for m in mounts(spec) if (kind is None or m.kind == kind) and is_under(path, m.path)]
    return max(hits, key=lambda m: len(m.path)) if hits else None


def has_gpu(spec: Spec) -> bool:
    return bool(gpu_list(spec.resources.gpu))


def num_ranks(spec: Spec) -> int | None:
    """Processes in the run, or None when the GPU string is unreadable (MS301/MS302 report that)."""
    items = gpu_list(spec.resources.gpu)
    if not items:
        return (spec.resources.ranks or 1) * spec.resources.nodes
    req = parse_gpu(items[0])
    if req is None or req.count < 1:
        return None
    return req.count * spec.resources.nodes


def ranks_path(spec: Spec) -> YamlPath:
    """Where the number of ranks comes from, for a "set here" related span."""
    return ("resources", "gpu") if has_gpu(spec) else ("resources", "ranks")


def model_dim(spec: Spec, name: str) -> int | None:
    """A model dimension: the `model:` override, else the preset's value (compose fills both in)."""
    value = getattr(spec.model, name)
    if value is None and spec.preset is not None:
        value = getattr(PRESETS[spec.preset], name)
    return value


def dim_path(ctx_set, name: str) -> YamlPath:
    """Where a model dimension was written: `model.<name>`, else `preset`."""
    return ("model", name) if ctx_set(("model", name)) else ("preset",)
