"""The base of every versioned artifact megaspec writes and reads back (plan, receipt, manifests, seed).

dbt-core's pattern (`core/dbt/artifacts/schemas/base.py`): an artifact declares its schema version
once, as its `schema_version` field's default, and one reader checks that version before any other
field. A bump keeps yesterday's files readable: `UPGRADES` maps each previous version an artifact
still reads to a function that turns its data into the next version's, and the reader applies them
in turn before validating. A version that is neither current nor in the table is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel
from typing_extensions import Self

from .files import UnreadableFile, loads_bounded, read_json

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


class Artifact(BaseModel):
    """A versioned JSON artifact. Subclasses declare `schema_version` (a Literal with its default),
    `KIND` (its name in messages) and, after a bump, `UPGRADES` {previous version: upgrade}."""

    KIND: ClassVar[str]
    UPGRADES: ClassVar[dict[str, Upgrade]] = {}

    @classmethod
    def current_version(cls) -> str:
        """The version this megaspec writes: `megaspec.receipt.v3`."""
        return cls.model_fields["schema_version"].default

    @classmethod
    def read(cls, path: str | Path) -> Self:
        """The artifact in the file `path`, read by the bounded reader (`files.read_json`): UnreadableFile
        names the file and what is wrong with it (pydantic's ValueError a field that does not fit)."""
        data = read_json(path, cls.KIND)
        try:
            data = cls.upgraded(data)
        except ValueError as e:
            raise UnreadableFile(path, str(e)) from None
        return cls.model_validate(data)

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """The artifact of parsed JSON (a payload that came back from Modal, a file's data)."""
        return cls.model_validate(cls.upgraded(data))

    @classmethod
    def from_json(cls, text: str) -> Self:
        """The artifact of JSON text (a plan handed to the generated app, a rank, a child process)."""
        return cls.from_data(loads_bounded(text))

    @classmethod
    def upgraded(cls, data: Any) -> dict[str, Any]:
        """`data` in the current version: its version checked first, then each upgrade applied in turn."""
        if not isinstance(data, dict):
            raise ValueError(f"the {cls.KIND} holds a JSON {type(data).__name__}, not an object")
        for _ in range(len(cls.UPGRADES) + 1):
            found = data.get("schema_version")
            if found == cls.current_version():
                return data
            upgrade = cls.UPGRADES.get(found) if isinstance(found, str) else None
            if upgrade is None:
                break
            data = upgrade(dict(data))
        readable = ", ".join(repr(v) for v in (cls.current_version(), *cls.UPGRADES))
        raise ValueError(f"{cls.KIND} schema_version is {repr(found)[:80]}; this megaspec reads "
                         f"{readable}")
