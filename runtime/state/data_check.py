"""Token shards checked before any rank starts: every problem is one clear line (MS813), not a
traceback in the embedding at step 1.

The launcher runs `check_shards` after staging, on the files the ranks will read: the path exists
and holds files; each file is non-empty, a whole number of tokens of `data.dtype` (or of the dtype
its llm.c header names), at least one window of `seq_len + 1` tokens, no shorter than its header
claims; and every token id is below the model's vocabulary (read in chunks, in one pass). A folder
made by `megaspec data prepare` (a `manifest.json` in it) is read through its manifest: the ranks
read its `train/` shards (and `val/` for `train.eval`), and the manifest must agree with the model
(its tokenizer's vocabulary fits) and with the files (dtype and tokens of each shard).
"""

from __future__ import annotations

import stat
from pathlib import Path

import torch

from ..contract.codes import BAD_DATA
from ..contract.errors import RunFailure
from ..contract.shards import (
    LLMC_HEADER_BYTES,
    SHARDS_MANIFEST_FILE,
    ShardManifest,
    parse_llmc_header,
    prepared_folder,
    read_shard_manifest,
)

DTYPES = {"uint16": torch.uint16, "uint32": torch.uint32}  # the format's dtype names (contract/shards.py)
CHUNK_TOKENS = 1 << 24  # 32-64 MiB read at a time for the max-id scan


class BadDataError(RunFailure):
    code = BAD_DATA.code

    def __init__(self, message: str):
        super().__init__(message, stage="init")


def manifest_of(path: str) -> ShardManifest | None:
    """The manifest of a prepared folder at `path`; None for plain shards. An unreadable one is MS813."""
    root = prepared_folder(path)
    if root is None:
        return None
    try:
        return read_shard_manifest(root)
    except (OSError, ValueError) as e:  # a pydantic ValidationError is a ValueError
        reason = str(e).splitlines()[0]
        raise BadDataError(f"`{root / SHARDS_MANIFEST_FILE}` cannot be read ({reason}); run `megaspec data prepare` "
                           "again into a new folder") from None


def shard_files(path: str, split: str = "train") -> list[Path]:
    """The files the ranks read for `split`: a prepared folder's `train/` or `val/` shards as its
    manifest lists them; else `path` itself, or the regular files directly in it, sorted (train only)."""
    root = Path(path)
    if not root.exists():
        raise BadDataError(f"data.path `{path}` does not exist; write the shards there or set `data.stage_from`")
    if (manifest := manifest_of(path)) is not None:
        return [root / shard.file for shard in getattr(manifest, split)]
    if split != "train":
        raise BadDataError(f"data.path `{path}` has no `{split}` split: `train.eval` reads the `val/` shards of a "
                           "folder made by `megaspec data prepare`; prepare the corpus, or remove `train.eval`")
    files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else [root]
    if not files:
        raise BadDataError(f"data.path `{path}` holds no shard files")
    for file in files:
        if not stat.S_ISREG(file.stat().st_mode):  # a FIFO or a device: opening it could wait forever
            raise BadDataError(f"data.path `{file}` is not a regular file (a FIFO, socket or device); shards are "
                               "files: write them there, or point `data.path` at their folder")
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


def check_manifest(manifest: ShardManifest, path: str, vocab_size: int) -> None:
    """The tokenizer that made the shards must fit the model's vocabulary."""
    tokenizer = manifest.tokenizer
    if tokenizer.vocab_size > vocab_size:
        raise BadDataError(f"data.path `{path}` was tokenized by `{tokenizer.name}` (vocabulary {tokenizer.vocab_size})"
                           f", but the model's vocabulary has {vocab_size} ids; set `model.vocab_size` to at least "
                           f"{tokenizer.vocab_size}, or prepare the corpus with this model's tokenizer")


def _listed_tokens(manifest: ShardManifest | None, root: Path, file: Path) -> int | None:
    if manifest is None:
        return None
    return next(s.num_tokens for s in manifest.train + manifest.val if root / s.file == file)


def check_shards(path: str, dtype: str, seq_len: int, vocab_size: int, split: str = "train") -> dict[str, int]:
    """Raise `BadDataError` on the first bad shard of `split`; else how many files, tokens and windows of
    `seq_len + 1` tokens the ranks will read. A plain shard must hold a window; a prepared folder's last
    shard may be short (its tokens are dropped), as long as the split holds one window."""
    files = shard_files(path, split)
    manifest = manifest_of(path)
    if manifest is not None:
        check_manifest(manifest, path, vocab_size)
        dtype = manifest.dtype
    total = windows = 0
    for file in files:
        num_tokens = _check_file(file, dtype, seq_len, vocab_size, manifest, Path(path))
        total += num_tokens
        windows += max(0, (num_tokens - 1) // seq_len)
    if windows == 0:
        raise BadDataError(f"data.path `{path}` `{split}` holds {total} tokens, less than one window of "
                           f"`train.seq_len` + 1 = {seq_len + 1}")
    return {"num_files": len(files), "num_tokens": total, "num_windows": windows}


def _check_file(file: Path, dtype: str, seq_len: int, vocab_size: int, manifest: ShardManifest | None,
                root: Path) -> int:
    """One shard's number of tokens, after its checks."""
    if not file.is_file():
        raise BadDataError(f"shard `{file}` is listed in `{SHARDS_MANIFEST_FILE}` but missing; copy the whole prepared folder")
    tokens_dtype, offset, num_tokens = token_layout(file, dtype)
    listed = _listed_tokens(manifest, root, file)
    if listed is not None and (num_tokens != listed or tokens_dtype != DTYPES[dtype]):
        found = str(tokens_dtype).removeprefix("torch.")
        raise BadDataError(f"shard `{file}` holds {num_tokens} tokens of {found}; `{SHARDS_MANIFEST_FILE}` lists {listed} of "
                           f"{dtype}: the folder changed after `megaspec data prepare`; prepare it again")
    if num_tokens == 0:
        raise BadDataError(f"shard `{file}` is empty")
    if manifest is None and num_tokens < seq_len + 1:
        raise BadDataError(f"shard `{file}` holds {num_tokens} tokens, less than one window of "
                           f"`train.seq_len` + 1 = {seq_len + 1}")
    top = _max_token(file, tokens_dtype, offset, num_tokens)
    if top >= vocab_size:
        raise BadDataError(f"shard `{file}` holds token id {top}, but the model's vocabulary has {vocab_size} "
                           f"ids (0..{vocab_size - 1}); tokenize for this model or set `model.vocab_size`")
    return num_tokens
