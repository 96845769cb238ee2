"""Spec paths named on the command line: a missing one is a usage error that says where it was
looked for and what exists close by (`spec/near_files.py`), the same for every verb."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click


def require_existing(paths: Iterable[str | Path], param_hint: str = "SPEC") -> None:
    """Exit 2 at the first path that does not exist, naming its absolute path and any near spelling."""
    from ..spec.near_files import did_you_mean_file

    for raw in paths:
        path = Path(raw)
        if path.is_symlink() and not path.exists():  # a loop or a dangling link: resolve() would raise
            raise click.BadParameter(f"`{raw}` is a symbolic link that leads to no file (a loop of links, or a "
                                     "target that is gone)", param_hint=param_hint)
        if not path.exists():
            raise click.BadParameter(f"`{raw}` does not exist (looked for {path.resolve()}).{did_you_mean_file(path)}",
                                     param_hint=param_hint)


def named_base(value: str | Path, *params: str) -> Path:
    """The folder below which no link may be written through, for a folder option: its value when
    the user named it (through any of `params`), else the current folder (a default `runs/` or
    `build/` that is a link someone left must not send files outside the project)."""
    from click.core import ParameterSource

    context = click.get_current_context()
    named = any(context.get_parameter_source(p) not in (None, ParameterSource.DEFAULT) for p in params)
    return Path(value) if named else Path(".")


def links_inside(folder: Path) -> list[Path]:
    """Every symbolic link at any depth of `folder` (not followed), in walk order."""
    found = []
    for parent, dirs, files in os.walk(folder):
        found += [Path(parent, name) for name in (*dirs, *files) if os.path.islink(os.path.join(parent, name))]
    return found


def write_output(path: str | Path, text: str) -> None:
    """`-o FILE`: written atomically, through the same last masking pass as what is printed
    (`credentials.mask_output`); a FILE that is a link, a FIFO, a device or a folder (WriteRefused),
    or that cannot be written, is a usage error (exit 2), not a traceback."""
    from megaspec.runtime.contract.files import write_text_atomic

    from ..lint.credentials import mask_output

    try:
        write_text_atomic(path, mask_output(text))
    except OSError as e:
        raise click.BadParameter(f"cannot write `{path}`: {e.strerror or e}", param_hint="'-o' / '--output'") from None
