"""Atomic writes and bounded reads, shared by every artifact megaspec leaves behind or reads back.

Pure standard library.

Temp file in the same directory, then rename: a reader sees the old file or the new one, never a
half-written one. The compiler (build output, manifests, SARIF) and the runtime (receipts, status
files) both use this one function. Every file read back from a run or sweep folder goes through
`read_bytes_capped` (regular files only, never through a link at the file, a size cap per kind,
never blocking) and JSON through `read_json` (a nesting cap checked before parsing): a file
someone left there is an `UnreadableFile` naming it, never a hang, a memory blow-up or a traceback.
"""

from __future__ import annotations

import errno
import functools
import itertools
import json
import operator
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | Path, text: str, *, durable: bool = True) -> Path:
    """Write `text` (UTF-8, `\n` newlines) to `path` atomically.

    `durable=False` skips the fsync: for files that only other live processes read (per-step status),
    where an fsync every step would show up in the step time.
    """
    return write_bytes_atomic(path, text.encode("utf-8"), durable=durable)


def write_bytes_atomic(path: str | Path, data: bytes, *, durable: bool = True) -> Path:
    """Write `data` to `path` atomically (temp file in the same folder, then rename).

    The one writer: an existing `path` that is a link, a FIFO, a device or a folder is refused, never
    renamed over (WriteRefused); the commands check the folders on the way with `refuse_links`. On a
    full disk, the space a run reserved (`reserve_space`) is given up for it: a run's last record
    still gets written.
    """
    path = Path(path)
    _refuse_special(path)
    try:
        return _write_bytes_atomic(path, data, durable)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not release_reserve(path.parent):
            raise
    return _write_bytes_atomic(path, data, durable)


RESERVE_FILE = ".space.reserve"  # in a run folder: freed when a disk fills, so the receipt and manifest fit
RESERVE_BYTES = 256 << 10  # a receipt is ~20 KB, a manifest ~2 KB


def reserve_space(folder: str | Path) -> None:
    """Set aside RESERVE_BYTES in `folder` for a run's last records (best effort: a full disk gets none)."""
    path = Path(folder) / RESERVE_FILE
    if path.exists():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError:
        return
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError:
        path.unlink(missing_ok=True)
    finally:
        os.close(fd)


def release_reserve(folder: str | Path) -> bool:
    """Remove the reserve of the run folder `folder` is (or is directly in); True when there was one."""
    folder = Path(folder)
    for candidate in (folder / RESERVE_FILE, folder.parent / RESERVE_FILE):
        if candidate.is_file():
            candidate.unlink(missing_ok=True)
            return True
    return False


def _write_bytes_atomic(path: Path, data: bytes, durable: bool) -> Path:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # the folder is new: create it only then (a mkdir per file is not free)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # a temp file is 0600; the result is a normal new file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_temp_files(folder: str | Path) -> list[Path]:
    """Remove the temp files `write_bytes_atomic` left in `folder` when a kill stopped it before its
    rename (`.<name>.<random>.tmp`); the ones removed. Only while no writer works in the folder."""
    found = sorted(p for p in Path(folder).glob(".*.tmp") if p.is_file()) if Path(folder).is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


@functools.cache
def _umask() -> int:
    """This process's umask, read without changing it where Linux reports it (os.umask sets it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class WriteRefused(OSError):
    """A file megaspec would write is a link or no regular file, or a folder on the way to it is a link
    (an OSError: whoever copes with a file it cannot write copes with this one)."""

    def __init__(self, path: Path, what: str):
        super().__init__(f"`{path}` is {what}; megaspec writes only regular files, never through links: remove it "
                         "or name another path")
        self.path = path


def _refuse_special(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if not stat.S_ISREG(mode):
        raise WriteRefused(path, _kind_of(mode))


def _kind_of(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def refuse_links(base: str | Path, target: str | Path) -> Path:
    """`target`, after checking that no folder below `base` down to it (itself included) is a symbolic link.

    `base` is the folder the user named (or the current one): a link someone left in `build/`,
    `sweeps/`, `runs/` or a run's `report/` must not send files outside the project. (Paths are
    compared as absolute paths, without resolving links; a `target` outside `base` is not checked.)
    Raises WriteRefused.
    """
    base, target = Path(base), Path(target)
    try:
        parts = target.absolute().relative_to(base.absolute()).parts
    except ValueError:
        parts = ()
    current = base
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise WriteRefused(current, "a symbolic link")
    return target


class UnreadableFile(ValueError):
    """A file megaspec reads back that is no artifact it can read: names the file and why.

    A ValueError, so a reader that copes with a malformed artifact copes with this one the same way.
    """

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"`{path}`: {reason}")
        self.path, self.reason = Path(path), reason


# The most bytes read back per kind of file: far above what a run writes, far below what hurts.
# A JSON cap also bounds the time of the nesting scan (about 0.13 s per MiB of brackets).
READ_CAPS = {
    "manifest": 1 << 20, "sweep manifest": 4 << 20, "plan": 4 << 20, "receipt": 4 << 20,
    "progress": 16 << 20, "rank status": 1 << 20, "seed manifest": 1 << 20, "log": 16 << 20,
    "shard manifest": 64 << 20,  # `megaspec data prepare`'s: a line per corpus file and per shard
    "app": 4 << 20,  # a generated app.py read back (`plan --diff`)
}
MAX_JSON_DEPTH = 64  # artifacts nest under 10 levels; json.loads recurses once per level


def read_bytes_capped(path: str | Path, kind: str, *, offset: int = 0) -> bytes:
    """The bytes of the regular file `path` from `offset` on, at most READ_CAPS[kind] of them.

    Opened without following a link at `path` and without blocking (a FIFO, `/dev/stdin`, `/dev/zero`,
    a socket or a directory is refused on the open descriptor, never read). Raises UnreadableFile
    (FileNotFoundError's case included: `.reason` says it does not exist).
    """
    cap = READ_CAPS[kind]
    fd, size = _open_regular(path, kind)
    try:
        if size - offset > cap:
            raise UnreadableFile(path, f"the {kind} is {size:,} bytes; megaspec reads {cap:,} at most")
        data = _read_at_most(fd, offset, cap + 1, path, kind)
    finally:
        os.close(fd)
    if len(data) > cap:  # it grew while being read
        raise UnreadableFile(path, f"the {kind} is over {cap:,} bytes; megaspec reads {cap:,} at most")
    return data


def read_tail(path: str | Path, kind: str, offset: int = 0) -> tuple[int, bytes]:
    """The last READ_CAPS[kind] bytes at or after `offset` of a regular file that may grow (a log) and
    where they start; opened and refused as in read_bytes_capped."""
    fd, size = _open_regular(path, kind)
    try:
        start = max(offset, size - READ_CAPS[kind])
        return start, _read_at_most(fd, start, READ_CAPS[kind], path, kind)
    finally:
        os.close(fd)


def _open_regular(path: str | Path, kind: str) -> tuple[int, int]:
    """A descriptor of the regular file `path` (not followed if a link, never blocking) and its size."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise UnreadableFile(path, _open_failure(e)) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnreadableFile(path, f"the {kind} is not a regular file (a directory, a device or a pipe)")
    return fd, info.st_size


def _read_at_most(fd: int, offset: int, limit: int, path: str | Path, kind: str) -> bytes:
    chunks, size = [], 0
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        while size < limit:
            chunk = os.read(fd, min(limit - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:  # EIO, or EISDIR-like surprises of an odd file system
        raise UnreadableFile(path, f"cannot read the {kind}: {e.strerror}") from None
    return b"".join(chunks)


def _open_failure(e: OSError) -> str:
    if e.errno == errno.ENOENT:
        return "it does not exist"
    if e.errno == errno.ELOOP:
        return "it is a symbolic link; megaspec reads back only regular files, never through a link"
    return f"cannot open it: {e.strerror}"


def read_text_capped(path: str | Path, kind: str) -> str:
    """read_bytes_capped as UTF-8 text (a BOM dropped); undecodable bytes are UnreadableFile."""
    try:
        return read_bytes_capped(path, kind).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnreadableFile(path, f"the {kind} is not UTF-8 text (byte {e.start})") from None


def loads_bounded(text: str) -> Any:
    """json.loads of `text` after checking it nests at most MAX_JSON_DEPTH levels (raises ValueError)."""
    depth = json_depth(text) if text.count("[") + text.count("{") > MAX_JSON_DEPTH else 0
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"it nests {depth} levels deep; megaspec reads {MAX_JSON_DEPTH} at most")
    return json.loads(text)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
_OPENS = bytes.maketrans(b"[{]}", b"\x01\x01\x00\x00")


def json_depth(text: str) -> int:
    """How deep `text`'s brackets nest outside its strings: a scan in C loops, no recursion.

    With o(i) the openers among the first i brackets, the depth after them is o(i) - (i - o(i)).
    """
    brackets = _JSON_STRING.sub(b"", text.encode("utf-8", "surrogatepass")).translate(_OPENS, _NOT_BRACKET)
    opens = itertools.accumulate(brackets)
    return max(map(operator.sub, map(operator.mul, opens, itertools.repeat(2)), itertools.count(1)), default=0)


def read_json(path: str | Path, kind: str) -> Any:
    """The JSON value of the file `path`, read with READ_CAPS[kind] and MAX_JSON_DEPTH. Raises UnreadableFile."""
    text = read_text_capped(path, kind)
    try:
        return loads_bounded(text)
    except ValueError as e:
        raise UnreadableFile(path, f"the {kind} cannot be read as JSON: {e}") from None
