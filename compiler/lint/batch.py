"""Per-spec work over many files, spread across processes when the batch is large enough to pay for it.

Linting and compiling are independent per file and CPU-bound (YAML parse, pydantic, Jinja2,
`ast.parse`), so a `specs/` tree of hundreds of files uses every core, the way ruff does. Workers
are forked after the pipeline modules are imported, so they start warm; results come back in input
order, so output is byte-identical to a serial run. Small batches stay in-process: forking and
pickling cost more than they save below a few dozen files.
"""

from __future__ import annotations

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


def map_ordered(fn: Callable[[T], R], items: Sequence[T], jobs: int | None = None) -> Iterator[R]:
    """`map(fn, items)` in input order, over forked worker processes when the batch is large.

    `fn` must be a module-level function (or a `functools.partial` of one) and its results picklable.
    Where `fork` is unavailable (Windows) the work stays serial rather than paying for spawn start-up.
    """
    workers = workers_for(len(items), jobs)
    if workers == 1 or not hasattr(os, "fork"):
        yield from map(fn, items)
        return
    import multiprocessing  # deferred, like the executor: only large batches pay for them
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, len(items) // (workers * CHUNKS_PER_WORKER))
    sys.stdout.flush()  # a forked child would otherwise flush the parent's pending output a second time
    sys.stderr.flush()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(fn, items, chunksize=chunk)
