"""Spec paths named on the command line: a missing one is a usage error that says where it was
looked for and what exists close by (`spec/near_files.py`), the same for every verb."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click


def require_existing(paths: Iterable[str | Path], param_hint: str = "SPEC") -> None:
    """Exit 2 at the first path that does not exist, naming its absolute path and any near spelling."""
    from ..spec.near_files import did_you_mean_file

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise click.BadParameter(f"`{raw}` does not exist (looked for {path.resolve()}).{did_you_mean_file(path)}",
                                     param_hint=param_hint)
