"""Token bytes -> shard files of one split (`train/` or `val/`): the shard format of
`runtime/contract/shards.py`, an llm.c header then at most `shard_tokens` tokens per file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from megaspec.runtime.contract.shards import DTYPE_BYTES, Shard, llmc_header


class ShardWriter:
    """Appends token bytes to `<folder>/<split>/shard_NNNNNN.bin`, starting a new file when one is full."""

    def __init__(self, folder: Path, split: str, dtype: str, shard_tokens: int):
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, dtype, shard_tokens
        self.itemsize = DTYPE_BYTES[dtype]
        self.shards: list[Shard] = []
        self.file: BinaryIO | None = None
        self.num_tokens = 0  # in the open file
        (folder / split).mkdir(parents=True)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.file is None:
                self._open()
            take = min(len(view), (self.shard_tokens - self.num_tokens) * self.itemsize)
            self.file.write(view[:take])
            self.num_tokens += take // self.itemsize
            view = view[take:]
            if self.num_tokens == self.shard_tokens:
                self._close()

    def close(self) -> list[Shard]:
        """The shards written, each one complete on disk."""
        if self.file is not None:
            self._close()
        return self.shards

    def _open(self) -> None:
        name = f"{self.split}/shard_{len(self.shards):06d}.bin"
        self.file = open(self.folder / name, "wb")  # noqa: SIM115 - closed in _close
        self.file.write(llmc_header(self.dtype, 0))  # the count is written when the file is full
        self.shards.append(Shard(file=name, num_tokens=0))
        self.num_tokens = 0

    def _close(self) -> None:
        self.file.seek(0)
        self.file.write(llmc_header(self.dtype, self.num_tokens))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self.file = None
        self.shards[-1] = Shard(file=self.shards[-1].file, num_tokens=self.num_tokens)
