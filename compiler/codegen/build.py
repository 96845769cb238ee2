"""From a checked spec to its Plan: what the spec is made of (its hash, where each value came from),
then `lower`. `megaspec compile`, `plan` and `apply` all go through `plan_for`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from megaspec.runtime.contract.plan import Plan

from ..lint.check import Checked
from .lower import lower


def spec_sha256(files: list[str]) -> str:
    """The hash of everything a spec is made of, in `extends:` order (the spec first, then its bases).

    A spec without bases: the sha256 of its bytes (what `sha256sum` prints). With bases: the sha256
    of the `sha256sum`-style manifest of every file, so editing a base changes the hash too.
    """
    digests = [(hashlib.sha256(Path(f).read_bytes()).hexdigest(), f) for f in files]
    if len(digests) == 1:
        return digests[0][0]
    manifest = "".join(f"{digest}  {Path(f).as_posix()}\n" for digest, f in digests)
    return hashlib.sha256(manifest.encode()).hexdigest()


def origins_of(checked: Checked) -> dict[str, str]:
    """Every effective spec key (mappings and leaves, parents first) -> where its value came from."""
    origins: dict[str, str] = {}

    def visit(value: Any, path: tuple[str, ...], dotted: str) -> None:
        for key, child in value.items():
            child_path, child_dotted = (*path, key), f"{dotted}.{key}" if dotted else key
            origins[child_dotted] = checked.origin(child_path)
            if isinstance(child, dict):
                visit(child, child_path, child_dotted)

    assert checked.spec is not None
    visit(checked.spec.model_dump(mode="json", by_alias=True), (), "")
    return origins


def plan_for(checked: Checked, *, target: str | None = None, run_id: str | None = None,
             overridden: dict[str, str] | None = None, name: str | None = None, sweep_id: str | None = None) -> Plan:
    """The Plan of a spec free of lint errors. `overridden`: origins a command-line option replaced;
    `name`: the run's name when it is not the spec's (a sweep's runs); `sweep_id`: the sweep it is one of."""
    assert checked.spec is not None
    spec = checked.spec if name is None else checked.spec.model_copy(update={"name": name})
    return lower(spec, spec_path=Path(checked.path).as_posix(), spec_sha256=spec_sha256(checked.files),
                 origins=origins_of(checked) | (overridden or {}), target=target, run_id=run_id,
                 sweep_id=sweep_id, spec_dir=checked.composed.code_dir)
