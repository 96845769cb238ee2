"""Token shards checked before any rank starts: every problem is one clear line (MS813), not a
traceback in the embedding at step 1.

The launcher runs `check_shards` after staging, on the files the ranks will read: the path exists
and holds files; each file is non-empty, a whole number of tokens of `data.dtype` (or of the dtype
its llm.c header names), at least one window of `seq_len + 1` tokens, no shorter than its header
claims; and every token id is below the model's vocabulary (read in chunks, in one pass).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..contract.errors import RunFailure
from ..contract.shards import LLMC_HEADER_BYTES, parse_llmc_header

DTYPES = {"uint16": torch.uint16, "uint32": torch.uint32}  # the format's dtype names (contract/shards.py)
CHUNK_TOKENS = 1 << 24  # 32-64 MiB read at a time for the max-id scan


class BadDataError(RunFailure):
    code = "MS813"

    def __init__(self, message: str):
        super().__init__(message, stage="init")


def shard_files(path: str) -> list[Path]:
    """The files the ranks read: `path` itself, or the regular files directly in it, sorted."""
    root = Path(path)
    if not root.exists():
        raise BadDataError(f"data.path `{path}` does not exist; write the shards there or set `data.stage_from`")
    files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else [root]
    if not files:
        raise BadDataError(f"data.path `{path}` holds no shard files")
    return files


def token_layout(path: Path, dtype: str) -> tuple[torch.dtype, int, int]:
    """(dtype, byte offset of token 0, number of tokens) of one shard, from its llm.c header if it has one."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(LLMC_HEADER_BYTES)
    if (header := parse_llmc_header(head)) is not None:
        name, claimed = header
        tokens_dtype = DTYPES[name]
        held = (size - LLMC_HEADER_BYTES) // tokens_dtype.itemsize
        if claimed < 0 or claimed > held:
            raise BadDataError(f"shard `{path}`: its header claims {claimed} tokens but the file holds {held}; "
                               "the file is truncated or its header is wrong")
        return tokens_dtype, LLMC_HEADER_BYTES, claimed
    tokens_dtype = DTYPES[dtype]
    if size % tokens_dtype.itemsize:
        raise BadDataError(f"shard `{path}` is {size} bytes, not a whole number of {dtype} tokens; "
                           "check `data.dtype`")
    return tokens_dtype, 0, size // tokens_dtype.itemsize


def _max_token(path: Path, tokens_dtype: torch.dtype, offset: int, num_tokens: int) -> int:
    top = 0
    with open(path, "rb") as f:
        f.seek(offset)
        for start in range(0, num_tokens, CHUNK_TOKENS):
            count = min(CHUNK_TOKENS, num_tokens - start)
            chunk = torch.frombuffer(bytearray(f.read(count * tokens_dtype.itemsize)), dtype=tokens_dtype)
            top = max(top, int(chunk.to(torch.int64).max()))
    return top


def check_shards(path: str, dtype: str, seq_len: int, vocab_size: int) -> dict[str, int]:
    """Raise `BadDataError` on the first bad shard; else how many files and tokens the ranks will read."""
    total = 0
    files = shard_files(path)
    for file in files:
        tokens_dtype, offset, num_tokens = token_layout(file, dtype)
        if num_tokens == 0:
            raise BadDataError(f"shard `{file}` is empty")
        if num_tokens < seq_len + 1:
            raise BadDataError(f"shard `{file}` holds {num_tokens} tokens, less than one window of "
                               f"`train.seq_len` + 1 = {seq_len + 1}")
        top = _max_token(file, tokens_dtype, offset, num_tokens)
        if top >= vocab_size:
            raise BadDataError(f"shard `{file}` holds token id {top}, but the model's vocabulary has {vocab_size} "
                               f"ids (0..{vocab_size - 1}); tokenize for this model or set `model.vocab_size`")
        total += num_tokens
    return {"num_files": len(files), "num_tokens": total}
