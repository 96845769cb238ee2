"""Text read back from a run folder, on its way to a terminal or a markdown file: every control escaped,
long strings cut.

A run folder is data anyone could have written (a copied sweep, a receipt edited by hand, a rank
that printed anything): its strings must not set the terminal's title (OSC), plant links (OSC 8),
ring the bell, move the cursor (CSI, a lone `\\r`), reverse the text (U+202E and the other bidi
controls) or take minutes to lay out. The commands that read run folders back (`status`, `collect`,
`cancel`, `logs`, `receipts`, `report`) print through `escaped_output`, so every byte they print is
escaped whichever field it came from; tables cut the strings they show with `clipped`.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# C0 (but `\t` and `\n`), DEL, C1, the line and paragraph separators and the bidi controls, written
# as JSON-style `\uXXXX` escapes: readable on a terminal, and the same string inside a JSON value.
CONTROLS = (*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0), 0x061C, 0x200E, 0x200F, 0x2028,
             0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ESCAPES = {c: f"\\u{c:04x}" for c in CONTROLS}
MAX_SHOWN = 200  # characters of one read-back string in a table or a one-line view


def escaped(text: str) -> str:
    """`text` with every terminal control written as its escape (`\\n` and `\\t` kept)."""
    return text.translate(_ESCAPES)


def clipped(value: Any, limit: int = MAX_SHOWN) -> str:
    """`value` as one escaped line of at most about `limit` characters (the rest counted, not shown)."""
    text = escaped(str(value)).replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit:,} more characters)"


class _FilteredStream:
    """A text stream that passes what is written to it through `apply`; everything else is the wrapped
    stream's."""

    def __init__(self, inner: TextIO, apply: Callable[[str], str]):
        self._inner, self._apply = inner, apply

    def write(self, text: str) -> int:
        self._inner.write(self._apply(text))
        return len(text)

    def write_raw(self, text: str) -> None:
        """megaspec's own control sequence (clearing the screen), written as it is."""
        getattr(self._inner, "write_raw", self._inner.write)(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def clear_screen() -> None:
    """click.clear() through escaped_output: the one control sequence a read-back command writes itself."""
    if sys.stdout.isatty():
        getattr(sys.stdout, "write_raw", sys.stdout.write)("\033[2J\033[1;1H")
        sys.stdout.flush()


@contextmanager
def filtered_output(apply: Callable[[str], str]) -> Iterator[None]:
    """sys.stdout and sys.stderr passing everything written to them through `apply`, for the block."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _FilteredStream(sys.stdout, apply), _FilteredStream(sys.stderr, apply)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def escaped_output() -> contextlib.AbstractContextManager[None]:
    """sys.stdout and sys.stderr escaping every control written to them, for the block's duration."""
    return filtered_output(escaped)


def read_back(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command that prints what it read from run folders: run inside `escaped_output`."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with escaped_output():
            return command(*args, **kwargs)
    return wrapper
