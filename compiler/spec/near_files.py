"""Spec files near a path that does not exist: the spelling the user probably meant.

Every place that reads a spec path a person typed asks this one function when the file is not
there: the command line of `lint`, `plan`, `compile`, `apply`, `cache seed` and `sweep`, and
`extends:`. A neighbour is a `.yaml`/`.yml` file in the same folder whose name matches once case, the suffix
and the separators `-`, `_`, `.` and spaces are set aside (`h200x8.yml` for `h200-x8.yaml`,
`cpu_local.yaml` for `cpu-local.yaml`), or is spelled closely (`h200x8.yaml` for `h20x8.yaml`). A
folder that does not exist is looked up the same way (`spec/` for `specs/`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SPEC_SUFFIXES = (".yaml", ".yml")
CLOSE_RATIO = 0.8  # difflib's similarity of the bare names: one edit in an 8-character name passes
MAX_SUGGESTIONS = 3
_SEPARATORS = re.compile(r"[-_.\s]+")


def near_files(path: Path) -> list[Path]:
    """Existing spec files that `path` (which does not exist) probably meant, best first, spelled
    from `path`'s own folder (relative stays relative); empty when nothing is close."""
    folder = path.parent
    if folder.is_dir():
        return _near_in(folder, path.name, files=True)
    if folder == folder.parent or not folder.parent.is_dir():
        return []
    hits = [hit for near in _near_in(folder.parent, folder.name, files=False) for hit in _near_in(near, path.name, files=True)]
    return hits[:MAX_SUGGESTIONS]


def did_you_mean_file(path: Path, relative_to: Path | None = None) -> str:
    """` Did you mean `a` or `b`?` (with a leading space) for the neighbours of `path`, or "";
    spelled relative to the folder `relative_to` when given (an `extends:` entry's file)."""
    near = [Path(os.path.relpath(p, relative_to)) if relative_to else p for p in near_files(path)]
    return (" Did you mean " + " or ".join(f"`{p.as_posix()}`" for p in near) + "?") if near else ""


def _bare(name: str) -> str:
    """`H200-x8.YML` -> `h200x8`: the name without case, spec suffix or separators."""
    lower = name.lower()
    for suffix in SPEC_SUFFIXES:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    return _SEPARATORS.sub("", lower)


def _near_in(folder: Path, name: str, *, files: bool) -> list[Path]:
    import difflib

    try:
        entries = [p for p in folder.iterdir() if (p.is_file() and p.name.lower().endswith(SPEC_SUFFIXES)
                                                   if files else p.is_dir())]
    except OSError:
        return []
    want = _bare(name)
    scored = []
    for entry in entries:
        bare = _bare(entry.name)
        ratio = 1.0 if bare == want else difflib.SequenceMatcher(None, want, bare).ratio()
        if ratio >= CLOSE_RATIO:
            scored.append((-ratio, entry.name, entry))
    if any(ratio == -1.0 for ratio, _, _ in scored):  # the same bare name: no need to guess further
        scored = [s for s in scored if s[0] == -1.0]
    return [entry for _, _, entry in sorted(scored)][:MAX_SUGGESTIONS]
