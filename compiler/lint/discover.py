"""Which files under a directory are specs: what `megaspec lint DIR` and `megaspec compile DIR` read.

A spec is a `*.yaml` / `*.yml` file whose top level has the format key (`megaspec: 1`), so a
repository's CI workflows, compose files and docs configs are not mistaken for broken specs.
Files named `_*` are bases, linted through the specs that extend them. Hidden directories
(`.git`, `.venv`, `.github`), installed-package trees and the `exclude` globs of
`[tool.megaspec]` are not entered; only regular files are read (a FIFO or a device named `x.yaml`
would hang or never end). A file named on the command line is always linted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..spec.source import FORMAT_KEY, SpecFileError, read_spec_bytes

SPEC_SUFFIXES = (".yaml", ".yml")
SKIPPED_DIRS = frozenset({"node_modules", "site-packages", "__pycache__", "__pypackages__", "venv", "dist"})


def has_format_key(path: Path) -> bool:
    """Whether a regular file holds the `megaspec:` key; a file too large or unreadable counts (the
    linter says why: MS004, MS011), anything else (a FIFO, a device) does not."""
    try:
        return FORMAT_KEY.search(read_spec_bytes(path).decode("utf-8", errors="replace")) is not None
    except SpecFileError as e:
        return e.kind == "too-large"
    except (OSError, ValueError):
        return True


def spec_files(root: Path, excluded: Callable[[Path], bool] = lambda _: False) -> list[Path]:
    """Spec files below `root`, sorted; directories are pruned (hidden, installed packages, `excluded`)
    before they are walked."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS
                   and not excluded(Path(folder, d))]
        for name in names:
            path = Path(folder, name)
            if (path.suffix in SPEC_SUFFIXES and not name.startswith("_") and not excluded(path)
                    and has_format_key(path)):
                found.append(path)
    return sorted(found)
