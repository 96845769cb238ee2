"""Mounts of a spec: which Volume or bucket a path lies on, decided once for the rules and `lower`.

Lint rules (MS214, MS401-MS410) and `lower` (a data path's class in the Plan) ask the same
question of the validated Spec: `mount_of` answers it, with normalized POSIX paths.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import get_args

from megaspec.runtime.contract.vocabulary import PathClass, VolumeKind

from ..diagnostics import YamlPath
from .model import Spec

VOLUME_KINDS: tuple[VolumeKind, ...] = get_args(VolumeKind)


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


def path_class(spec: Spec, path: str) -> PathClass:
    """Where `path` lives: `volume`, `bucket`, or `local-disk` (the container's own disk)."""
    mount = mount_of(spec, path)
    return mount.kind if mount else "local-disk"
