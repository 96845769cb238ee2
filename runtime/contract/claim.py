"""Exclusive claims (`fcntl.flock` on a lock file): one holder at a time, across processes.

A claim is held by an open file description: it ends when its holder closes it or dies (SIGKILL
included), so a claim never outlives the process that took it and needs no cleanup. It guards
every change one process must make alone: a run folder while a launcher trains in it, a manifest's
state change (one launch per queued run, whatever runs at once), a sweep's free slots.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Claimed(Exception):
    """Another process holds the claim; `holder` is its pid as it wrote it (None if unreadable)."""

    def __init__(self, path: Path, holder: int | None) -> None:
        self.path, self.holder = path, holder
        who = f"process {holder}" if holder else "another process"
        super().__init__(f"`{path}` is held by {who}")


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii").strip() or 0) or None
    except (OSError, ValueError):
        return None


@contextmanager
def claim(path: str | Path, *, wait: bool = False) -> Iterator[int]:
    """Hold `path`'s claim for the `with` block (waiting for it when `wait`); yields the lock file's
    descriptor. Raises `Claimed` at once when another process holds it and `wait` is false."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise Claimed(path, _holder(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield fd
    finally:
        os.close(fd)  # releases the claim


def holder_of(path: str | Path) -> int | None:
    """The pid holding `path`'s claim now, or None when nobody holds it (or there is no lock file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _holder(fd) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
