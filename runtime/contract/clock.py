"""UTC timestamps of every artifact (receipt, manifest): one format, microseconds. Pure Python.

The compiler imports this module too, so a manifest's transitions and a receipt's start and end
times are written and read the same way.
"""

from __future__ import annotations

import datetime as dt

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> str:
    """Now, as ISO 8601 UTC with microseconds: `2026-01-02T03:04:05.123456Z`."""
    return dt.datetime.now(dt.timezone.utc).strftime(FORMAT)


def parse_utc(text: str) -> dt.datetime:
    """A `utc_now()` timestamp (or one written with whole seconds, as older manifests were) as a datetime."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_between(start: str, end: str) -> float:
    """Seconds from one timestamp to another."""
    return (parse_utc(end) - parse_utc(start)).total_seconds()
