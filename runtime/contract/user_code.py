"""The user's model code as both halves see it: where `model.entry`'s module is, and the code's hash.

Pure Python, no torch and no import of the user's code: lint finds the module file here (and reads it
as an AST), `lower` hashes the folders into the Plan, and the rank finds the file it names in a
bootstrap error here, so the three agree on which file `package.module` is.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")
HASH_CHUNK_BYTES = 1 << 20


def split_entry(entry: str) -> tuple[str, str]:
    """`package.module:callable` -> (`package.module`, `callable`)."""
    module, _, attr = entry.partition(":")
    return module, attr


def module_file(folders: list[Path], module: str) -> Path | None:
    """The file `module` is imported from with `folders` at the front of `sys.path` (the first folder wins):
    `pkg/mod.py` or `pkg/mod/__init__.py`; None when no folder holds it."""
    parts = module.split(".")
    for folder in folders:
        for candidate in (folder.joinpath(*parts).with_suffix(".py"), folder.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def code_files(folder: Path) -> list[tuple[str, Path]]:
    """Every file under `folder` that is shipped (bytecode caches left out), by sorted POSIX relative path."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if path.is_file() and not SKIPPED_DIRS & set(rel.parts) and not path.name.endswith(SKIPPED_SUFFIXES):
            found.append((rel.as_posix(), path))
    return sorted(found)


def code_sha256(folders: list[Path]) -> str:
    """sha256 over the folders in order: each file's relative path and bytes, length-prefixed, so moving,
    renaming or editing any file (Python or not) changes it, and nothing else (mtimes, caches) does.
    Files are streamed: a large one costs time, not memory."""
    digest = hashlib.sha256()
    for index, folder in enumerate(folders):
        for rel, path in code_files(folder):
            name = f"{index}/{rel}".encode()
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                digest.update(len(name).to_bytes(8, "big") + name + size.to_bytes(8, "big"))
                while chunk := f.read(HASH_CHUNK_BYTES):
                    digest.update(chunk)
    return digest.hexdigest()


def code_folders(spec_dir: Path, code: list[str]) -> list[Path]:
    """`model.code` folders as absolute paths: each relative to the folder of the spec file that lists them."""
    return [Path(os.path.normpath(spec_dir.absolute() / folder)) for folder in code]
