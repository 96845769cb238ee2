"""Atomic writes and version-checked reads, shared by every artifact megaspec leaves behind.

Pure standard library.

Temp file in the same directory, then rename: a reader sees the old file or the new one, never a
half-written one. The compiler (build output, manifests, SARIF) and the runtime (receipts, status
files) both use this one function.
"""

from __future__ import annotations

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


def read_versioned_json(path: str | Path, schema_version: str, kind: str) -> dict[str, Any]:
    """Read an artifact's JSON, checking `schema_version` before any field (the dbt reader pattern)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    found = raw.get("schema_version") if isinstance(raw, dict) else None
    if found != schema_version:
        raise ValueError(f"{path}: {kind} schema_version is {found!r}; this megaspec reads {schema_version!r}")
    return raw
