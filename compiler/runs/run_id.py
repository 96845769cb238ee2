"""Run ids, minted by `apply` before a backend starts: `<name>-<YYYYmmdd-HHMMSS>-<4 hex>`.

The UTC timestamp makes ids sort by launch time (`ls runs/` reads as a history); the random
suffix keeps two launches of one spec in the same second apart.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

RUN_ID_PATTERN = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*)-(?P<stamp>\d{8}-\d{6})-(?P<suffix>[0-9a-f]{4})$")
_UNSAFE = re.compile(r"[^a-z0-9-]+")


def slugify_name(name: str) -> str:
    """A spec name as a path- and Modal-safe slug: lowercase, `[a-z0-9-]`, no leading/trailing dash."""
    slug = _UNSAFE.sub("-", name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug) or "run"


def mint_run_id(name: str, *, now: datetime | None = None, suffix: str | None = None) -> str:
    """A new run id; `now` and `suffix` are seams for tests (defaults: UTC now, 4 random hex)."""
    stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{slugify_name(name)}-{stamp}-{suffix or secrets.token_hex(2)}"


def is_run_id(text: str) -> bool:
    return RUN_ID_PATTERN.match(text) is not None
