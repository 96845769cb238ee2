"""Which files under a directory are specs: what `megaspec lint DIR` and `megaspec compile DIR` read.

A spec is a `*.yaml` / `*.yml` file whose top level has the format key (`megaspec: 1`), so a
repository's CI workflows, compose files and docs configs are not mistaken for broken specs.
Files named `_*` are bases, linted through the specs that extend them. Hidden directories
(`.git`, `.venv`, `.github`), installed-package trees and the `exclude` globs of
`[tool.megaspec]` are not entered. A file named on the command line is always linted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..spec.source import MAX_FILE_BYTES

SPEC_SUFFIXES = (".yaml", ".yml")
SKIPPED_DIRS = frozenset({"node_modules", "site-packages", "__pycache__", "__pypackages__", "venv", "dist"})
_FORMAT_KEY = re.compile(rb"^megaspec[ \t]*:", re.MULTILINE)


def has_format_key(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return _FORMAT_KEY.search(f.read(MAX_FILE_BYTES)) is not None  # past the cap is MS004 anyway
    except OSError:
        return True  # unreadable: let the linter say so (MS011)


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
