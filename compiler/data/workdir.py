"""Where `megaspec data prepare` writes: a temp folder beside `out`, renamed to `out` when complete.

A reader never sees half a prepared folder: `out` appears whole, or not at all. The temp folder is
claimed (`runtime/contract/claim.py`) while its process writes; a folder whose process died
without removing it (SIGKILL, a power cut) holds an unclaimed lock, and the next prepare of the same
`out` removes it. Two prepares of one `out` at once: the first to finish publishes, the other's
shards are discarded with an error.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from megaspec.runtime.contract.claim import claim, holder_of

from .corpus import CorpusError

LOCK_FILE = ".lock"


@contextmanager
def work_folder(out: Path) -> Iterator[Path]:
    """A new claimed temp folder beside `out`, removed on the way out unless `publish` renamed it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(out)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        with claim(work / LOCK_FILE):
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def publish(work: Path, out: Path) -> None:
    """Rename the complete `work` to `out` (which may be an empty folder)."""
    (work / LOCK_FILE).unlink()
    try:
        os.rename(work, out)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
            raise
        raise CorpusError(f"`{out}` was written by another process meanwhile; this run's shards were discarded",
                          "Pass a new folder to `--out`") from None


def remove_abandoned(out: Path) -> None:
    """Remove the temp folders of earlier prepares of `out` whose process died."""
    for folder in out.parent.glob(f".{glob.escape(out.name)}.*.tmp"):
        if (folder / LOCK_FILE).is_file() and holder_of(folder / LOCK_FILE) is None:
            shutil.rmtree(folder, ignore_errors=True)
