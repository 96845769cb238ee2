"""The replacement texts that fixes carry for YAML scalars: quote, unquote, append inside the quotes.

Each returns None when the edit is not certain (escapes, mixed quotes), so no fix is offered.
"""

from __future__ import annotations

from collections.abc import Callable

_QUOTES = ("'", '"')


def is_quoted(text: str) -> bool:
    return len(text) >= 2 and text[0] in _QUOTES and text[-1] == text[0]


def unquote(text: str) -> str | None:
    """`"3e-4"` -> `3e-4`; None unless the whole scalar is quoted without escapes."""
    inner = text[1:-1] if is_quoted(text) else None
    return inner if inner is not None and "\\" not in inner and "'" not in inner else None


def quote(text: str) -> str | None:
    """`3.10` -> `"3.10"`; None unless the scalar is plain and needs no escaping."""
    return f'"{text}"' if text and not is_quoted(text) and not set(text) & {'"', "\\"} else None


def append_inside_quotes(suffix: str) -> Callable[[str], str | None]:
    """`tokens` -> `tokens/`, `"tokens"` -> `"tokens/"`."""
    return lambda text: f"{text[:-1]}{suffix}{text[-1]}" if is_quoted(text) else f"{text}{suffix}"
