"""Which files under a directory are specs: what `megaspec lint DIR` and `megaspec compile DIR` read.

A spec is a `*.yaml` / `*.yml` file whose top level has the format key (`megaspec: 1`), so a
repository's CI workflows, compose files and docs configs are not mistaken for broken specs. A
near miss is linted too, never skipped in silence: a top-level key spelled close to `megaspec`
(`megaspce: 1`, `Megaspec:`), or two top-level keys only a spec has (`train`, `resources`, ...)
without the header; lint then says what is wrong with it (MS101 with a did-you-mean, MS102).
Files named `_*` are bases, linted through the specs that extend them. Hidden directories
(`.git`, `.venv`, `.github`), installed-package trees and the `exclude` globs of
`[tool.megaspec]` are not entered; only regular files are read (a FIFO or a device named `x.yaml`
would hang or never end). A file named on the command line is always linted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from ..spec.source import FORMAT_KEY, SpecFileError, read_spec_bytes

SPEC_SUFFIXES = (".yaml", ".yml")
SKIPPED_DIRS = frozenset({"node_modules", "site-packages", "__pycache__", "__pypackages__", "venv", "dist"})


TOP_LEVEL_KEY = re.compile(r"^[\"']?([A-Za-z_][\w.-]*)[\"']?[ \t]*:", re.MULTILINE)
HEADER_SIMILARITY = 0.75  # `megaspce`, `megspec`, `mega_spec` are near `megaspec`; `spec` (Kubernetes) is not
# Keys a spec shares with other YAML files (compose, Kubernetes, CI) do not make a file look like one.
SHARED_KEYS = frozenset({"megaspec", "name", "image", "volumes", "secrets", "data", "model"})


def looks_like_spec(path: Path) -> bool:
    """Whether a regular file is a spec or a near miss of one (see the module docstring); a file too
    large or unreadable counts (the linter says why: MS004, MS011), anything else (a FIFO) does not."""
    try:
        text = read_spec_bytes(path).decode("utf-8", errors="replace")
    except SpecFileError as e:
        return e.kind == "too-large"
    except (OSError, ValueError):
        return True
    if FORMAT_KEY.search(text):
        return True
    keys = set(TOP_LEVEL_KEY.findall(text))
    return any(_near_header(key) for key in keys) or len(keys & _spec_only_keys()) >= 2


def _near_header(key: str) -> bool:
    # only a folder's YAML file without the header asks, so lint starts without difflib
    from difflib import SequenceMatcher

    return SequenceMatcher(None, key.lower(), "megaspec").ratio() >= HEADER_SIMILARITY


@cache
def _spec_only_keys() -> frozenset[str]:
    from ..spec.model import Spec

    return frozenset(field.alias or name for name, field in Spec.model_fields.items()) - SHARED_KEYS


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
                    and looks_like_spec(path)):
                found.append(path)
    return sorted(found)
