"""`megaspec data prepare`: a corpus -> `train/` and `val/` token shards and their manifest.

The pipeline: `corpus.CorpusReader` reads the files in order as pieces of text; pieces are grouped
into batches of about `BATCH_BYTES`, tokenized in `jobs` worker processes (`tokenizer.encode`), and
written in the corpus's order by one `ShardWriter` per split. At most `2 x jobs` batches are in
flight, so memory is bounded whatever the corpus size; the output depends on the corpus, the
tokenizer and the shard size only (not on `jobs`). Everything is written into a temp folder beside
`out` (`workdir.py`), which is renamed to `out` at the end: a failure or a Ctrl-C leaves nothing
half-written.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from megaspec.runtime.contract.shards import (
    TRAIN_DIR,
    VAL_DIR,
    CorpusFile,
    ShardManifest,
    write_shard_manifest,
)

from .corpus import CorpusError, CorpusReader, Piece, corpus_files
from .shard_writer import ShardWriter
from .tokenizer import TokenizerSpec, encode, start_worker
from .workdir import publish, work_folder

BATCH_BYTES = 1 << 18  # text per worker task: a tokenizer's encodings of it hold many times its size
DEFAULT_SHARD_TOKENS = 1 << 26  # 128 MiB of uint16 per file


@dataclass(frozen=True)
class Batch:
    split: str
    texts: list[str]
    num_bytes: int


class InlineExecutor(Executor):
    """`jobs=1`: tokenize in this process, through the same `encode` as the workers."""

    def submit(self, fn: Callable, /, *args: object) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def batches(pieces: Iterator[Piece]) -> Iterator[Batch]:
    """Consecutive pieces of one split, about BATCH_BYTES of text each."""
    split, texts, size = None, [], 0
    for piece in pieces:
        if texts and (piece.split != split or size >= BATCH_BYTES):
            yield Batch(split, texts, size)
            texts, size = [], 0
        split = piece.split
        texts.append(piece.text)
        size += piece.num_bytes
    if texts:
        yield Batch(split, texts, size)


def prepare(paths: list[str], tokenizer: TokenizerSpec, out: Path, *, field: str, val_fraction: float,
            jobs: int, shard_tokens: int = DEFAULT_SHARD_TOKENS,
            on_bytes: Callable[[int], None] = lambda n: None, version: str) -> ShardManifest:
    """Prepare `out` from the corpus at `paths`; raises CorpusError (nothing written) on bad input."""
    files = corpus_files(paths)
    reader = CorpusReader(files, field, val_fraction)
    if reader.total_bytes == 0:
        raise CorpusError(f"the corpus ({', '.join(paths)}) holds no text", "Pass text or .jsonl files that are not empty")
    with work_folder(out) as work:
        writers = {s: ShardWriter(work, s, tokenizer.dtype, shard_tokens) for s in (TRAIN_DIR, VAL_DIR)}
        jobs = min(jobs, 1 + reader.total_bytes // BATCH_BYTES)  # no process without a batch to do
        pool = _executor(tokenizer, jobs)
        try:
            _tokenize(pool, 2 * jobs, batches(reader.pieces()), tokenizer, writers, on_bytes)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        shards = {s: w.close() for s, w in writers.items()}
        manifest = _manifest(reader, files, tokenizer, shards, field, val_fraction, version)
        write_shard_manifest(work, manifest)
        publish(work, out)
    return manifest


def _executor(tokenizer: TokenizerSpec, jobs: int) -> Executor:
    if jobs == 1:
        return InlineExecutor()
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker,
                               initargs=(tokenizer,))


def _tokenize(pool: Executor, window: int, work: Iterator[Batch], tokenizer: TokenizerSpec,
              writers: dict[str, ShardWriter], on_bytes: Callable[[int], None]) -> None:
    """Tokenize the batches in order with at most `window` of them in flight."""
    pending: deque[tuple[Batch, Future]] = deque()
    for batch in work:
        pending.append((batch, pool.submit(encode, tokenizer, batch.texts)))
        if len(pending) >= window:
            _write(pending.popleft(), writers, on_bytes)
    while pending:
        _write(pending.popleft(), writers, on_bytes)


def _write(item: tuple[Batch, Future], writers: dict[str, ShardWriter], on_bytes: Callable[[int], None]) -> None:
    batch, future = item
    writers[batch.split].write(future.result())
    on_bytes(batch.num_bytes)


def _manifest(reader: CorpusReader, files: list, tokenizer: TokenizerSpec, shards: dict, field: str,
              val_fraction: float, version: str) -> ShardManifest:
    corpus = [CorpusFile(path=f.name, sha256=reader.sha256[f.name], num_bytes=f.path.stat().st_size) for f in files]
    listing = "".join(f"{c.sha256}  {c.path}\n" for c in corpus)  # `sha256sum`'s format
    manifest = ShardManifest(
        megaspec_version=version, dtype=tokenizer.dtype, tokenizer=tokenizer.ref,
        corpus_sha256=hashlib.sha256(listing.encode()).hexdigest(), corpus=corpus,
        field=field if any(f.is_jsonl for f in files) else None, val_fraction=val_fraction,
        train=shards[TRAIN_DIR], val=shards[VAL_DIR])
    _check_splits(manifest)
    return manifest


def _check_splits(manifest: ShardManifest) -> None:
    if manifest.num_tokens(TRAIN_DIR) + manifest.num_tokens(VAL_DIR) == 0:
        raise CorpusError("the corpus holds no text", "Pass text or .jsonl files with documents in them")
    if manifest.num_tokens(TRAIN_DIR) == 0:
        raise CorpusError(f"the corpus is too small to hold out {manifest.val_fraction:g} of it for validation and "
                          "still train: every line went to `val/`", "Add text, or lower `--val-fraction`")
