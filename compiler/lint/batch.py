"""Per-spec work over many files, spread across processes when the batch is large enough to pay for it.

Linting and compiling are independent per file and CPU-bound (YAML parse, pydantic, Jinja2,
`ast.parse`), so a `specs/` tree of hundreds of files uses every core, the way ruff does. Workers
are forked after the pipeline modules are imported, so they start warm; results come back in input
order, so output is byte-identical to a serial run. Small batches stay in-process: forking and
pickling cost more than they save below a few dozen files. One file's bug or killed worker is that
file's MS902, never the end of the batch; workers die with the parent.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

MIN_FILES_PER_WORKER = 32
CHUNKS_PER_WORKER = 4  # several chunks each, so one slow chunk does not leave a core idle


def available_cpus() -> int:
    """Cores this process may run on (respects taskset and cgroup affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def workers_for(num_items: int, jobs: int | None) -> int:
    """How many processes `num_items` deserve: `jobs` (default: every core), at most one per 32 files."""
    wanted = available_cpus() if jobs is None or jobs < 1 else jobs
    return max(1, min(wanted, num_items // MIN_FILES_PER_WORKER))


def map_ordered(fn: Callable[[T], R], items: Sequence[T], jobs: int | None = None,
                on_crash: Callable[[T, str], R] | None = None) -> Iterator[R]:
    """`map(fn, items)` in input order, over forked worker processes when the batch is large.

    `fn` must be a module-level function (or a `functools.partial` of one) and its results picklable.
    `on_crash(item, reason)` is the result for an item whose `fn` raised or whose worker process died
    (killed for memory, a signal): that file is reported and the batch goes on. Without it, the
    exception reaches the caller. Workers die with the parent (kill -9 of `megaspec` stops them).
    Where `fork` is unavailable (Windows) the work stays serial rather than paying for spawn start-up.
    """
    work = functools.partial(_guarded, fn, on_crash) if on_crash is not None else fn
    workers = workers_for(len(items), jobs)
    if workers == 1 or not hasattr(os, "fork"):
        yield from map(work, items)
        return
    import multiprocessing  # deferred, like the executor: only large batches pay for them
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    chunk = max(1, len(items) // (workers * CHUNKS_PER_WORKER))
    _flush()
    num_done = 0
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            for result in pool.map(work, items, chunksize=chunk):
                num_done += 1
                yield result
    except BrokenProcessPool:
        if on_crash is None:
            raise
        # A worker died: every item without a result runs again in a process of its own, so only
        # the item that kills its process is reported, and the rest of the batch still gets done.
        for item in items[num_done:]:
            yield _isolated(work, item, on_crash)


def _flush() -> None:
    sys.stdout.flush()  # a forked child would otherwise flush the parent's pending output a second time
    sys.stderr.flush()


def _guarded(fn: Callable[[T], R], on_crash: Callable[[T, str], R], item: T) -> R:
    try:
        return fn(item)
    except Exception as e:  # noqa: BLE001 - one file's bug is reported for that file; the batch goes on
        return on_crash(item, f"{type(e).__name__}: {e}")


def _die_with_parent(parent: int) -> None:
    """Worker start-up: ask Linux to SIGKILL this process when the parent dies (prctl PR_SET_PDEATHSIG),
    then make sure the parent did not die before that was armed."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _isolated(work: Callable[[T], R], item: T, on_crash: Callable[[T, str], R]) -> R:
    """`work(item)` in a forked process of its own; `on_crash` when that process dies without a result."""
    import multiprocessing
    import signal

    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    _flush()
    process = context.Process(target=_child, args=(work, item, writer, os.getpid()), daemon=True)
    process.start()
    writer.close()
    try:
        result = reader.recv()
    except EOFError:
        result = None
    finally:
        reader.close()
        process.join()
    if result is not None:
        return result[0]
    code = process.exitcode or 0
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    hint = " (out of memory?)" if code == -signal.SIGKILL else ""
    return on_crash(item, f"its worker process {how}{hint}")


def _child(work: Callable[[T], R], item: T, writer, parent: int) -> None:
    _die_with_parent(parent)
    writer.send((work(item),))
    writer.close()
