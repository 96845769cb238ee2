"""What a run folder keeps so that `megaspec rerun` runs it again exactly, wherever it is run from.

    spec.yaml         the spec as applied (bases folded in)
    code/<i>/<name>/  a copy of the user's model code folder i (`model.code`), as it was when applied

`model.code` in spec.yaml names the copies relative to spec.yaml itself (`code/0/src`), so the folder
reruns the code the run ran even after the working copy changed, and from any current folder. The
copy holds the files `code_sha256` hashes (what the Modal image ships), so it has the run's code
hash. Code over `CODE_COPY_CAP` bytes, or code holding a known credential shape (megaspec writes no
secret byte), is not copied: spec.yaml then names the original folders by absolute path and says
why, and `rerun` refuses them once their hash is no longer the run's.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from pathlib import Path

from megaspec.runtime.contract.files import refuse_links, write_text_atomic
from megaspec.runtime.contract.rundir import CODE_DIR, SPEC_FILE
from megaspec.runtime.contract.user_code import code_files

HEADER = "# model.code: "  # spec.yaml's first line when the code was copied or named
CODE_COPY_CAP = 64 << 20  # bytes of model code copied into each run folder; larger code is named, not copied


def store_applied(run_dir: Path, text: str, folders: list[Path], *, link_from: Path | None = None) -> Path:
    """Write `run_dir`'s spec.yaml from the applied spec `text`, with its model code (`folders`, absolute,
    in `model.code` order) copied beside it when under the cap; `link_from`: a run folder stored from the
    same folders before (a sweep's), whose copies are hard-linked instead of copied again."""
    run_dir = Path(run_dir)
    if folders:
        not_copied = _copy_code(run_dir, folders, link_from)
        names = [str(f) for f in folders] if not_copied else [f"{CODE_DIR}/{i}/{f.name}" for i, f in enumerate(folders)]
        text = with_code(text, names, not_copied)
    return write_text_atomic(run_dir / SPEC_FILE, text)


def keep_for_rerun(run_dir: Path, text: str, folders: list[Path], *, link_from: Path | None = None) -> str | None:
    """`store_applied`, which never stops a run (a Modal one may be spawned already): None when kept, else
    the warning to say (a storage error: the run goes on, and `rerun` later says the folder holds no spec)."""
    from megaspec.runtime.contract.errors import describe_storage

    try:
        store_applied(run_dir, text, folders, link_from=link_from)
    except OSError as e:
        return (f"warning: the spec and model code for `megaspec rerun` could not be kept in {run_dir}: "
                f"{describe_storage(e)}; the run goes on")
    return None


def with_code(text: str, names: list[str], not_copied: str | None) -> str:
    """`text` with `model.code` replaced by `names` (its style, its comments and the rest of the file kept),
    under a first line that says where they are (and why not copied, `not_copied`)."""
    from ruamel.yaml import YAML

    if text.startswith(HEADER):  # a rerun's spec: the line is said again below, once
        text = text.partition("\n")[2]
    yaml = YAML()  # round trip: a person reads this file
    yaml.width = 4096
    data = yaml.load(text)
    model = data["model"]
    if isinstance(model.get("code"), list):
        model["code"][:] = names
    else:
        model["code"] = names
    why = (f"the code folders as applied (not copied: {not_copied})" if not_copied else
           "the code as applied, copied beside this file")
    out = io.StringIO()
    yaml.dump(data, out)
    return f"{HEADER}{why}\n{out.getvalue()}"


def _copy_code(run_dir: Path, folders: list[Path], link_from: Path | None) -> str | None:
    """Copy (or hard-link from `link_from`) each folder's files into `run_dir/code/<i>/<name>/`, whole or not
    at all (a temporary folder renamed into place); why not, copying nothing, when it must not be copied."""
    files = [(i, folder, rel, path) for i, folder in enumerate(folders) for rel, path in code_files(folder)]
    why = _not_to_copy([path for *_, path in files])
    if why:
        return why
    refuse_links(run_dir.parent, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / CODE_DIR
    staging = Path(tempfile.mkdtemp(prefix=f".{CODE_DIR}.tmp-", dir=run_dir))
    try:
        for i, folder, rel, path in files:
            dest = staging / str(i) / folder.name / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(link_from / CODE_DIR / str(i) / folder.name / rel if link_from else None, path, dest)
        if target.exists():  # an apply --resume of this run: its code is the run's (the plan hash says so)
            shutil.rmtree(target)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return None


def _not_to_copy(paths: list[Path]) -> str | None:
    """Why the code must not be copied: too large, or a file holds a known credential shape (named by
    file and kind, never by value)."""
    from ..lint.credentials import token_matches

    if sum(path.stat().st_size for path in paths) > CODE_COPY_CAP:
        return f"over {CODE_COPY_CAP >> 20} MiB"
    for path in paths:
        found = next(token_matches(path.read_bytes().decode("utf-8", errors="replace")), None)
        if found is not None:
            return f"{path.name} holds what looks like a {found[3]}"
    return None


def _link_or_copy(earlier: Path | None, source: Path, dest: Path) -> None:
    if earlier is not None and earlier.is_file() and not earlier.is_symlink():
        try:
            os.link(earlier, dest)
            return
        except OSError:
            pass  # another file system, or links refused: copy
    shutil.copyfile(source, dest)
