"""Atomic writes and version-checked reads, shared by every artifact megaspec leaves behind.

Pure standard library.

Temp file in the same directory, then rename: a reader sees the old file or the new one, never a
half-written one. The compiler (build output, manifests, SARIF) and the runtime (receipts, status
files) both use this one function.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> Path:
    """Write `text` (UTF-8, `\\n` newlines) to `path` atomically.

    `durable=False` skips the fsync: for files that only other live processes read (per-step status),
    where an fsync every step would show up in the step time.
    """
    return write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # the folder is new: create it only then (a mkdir per file is not free)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # a temp file is 0600; the result is a normal new file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@functools.cache
def _umask() -> int:
    """This process's umask, read without changing it where Linux reports it (os.umask sets it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class LinkRefused(Exception):
    """A folder megaspec would write into is a symbolic link."""

    def __init__(self, link: Path):
        super().__init__(f"`{link}` is a symbolic link; megaspec does not write through links: remove it")
        self.link = link


def refuse_links(base: str | Path, target: str | Path) -> Path:
    """`target`, after checking that no folder below `base` down to it is a symbolic link.

    `base` is the folder the user named (or the current one): a link someone left in `build/` or
    `sweeps/` must not send generated files outside the project. (A link at the file itself is
    replaced by the rename, never written through.) Raises LinkRefused.
    """
    base, target = Path(base), Path(target)
    current = base
    for part in target.relative_to(base).parts:
        current = current / part
        if current.is_symlink():
            raise LinkRefused(current)
    return target


def read_versioned_json(path: str | Path, schema_version: str, kind: str) -> dict[str, Any]:
    """Read an artifact's JSON, checking `schema_version` before any field (the dbt reader pattern)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    found = raw.get("schema_version") if isinstance(raw, dict) else None
    if found != schema_version:
        raise ValueError(f"{path}: {kind} schema_version is {found!r}; this megaspec reads {schema_version!r}")
    return raw
