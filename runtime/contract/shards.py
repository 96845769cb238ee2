"""The token-shard format, defined once: what `megaspec data prepare` writes and what the runtime reads.

Pure standard library and pydantic (no torch), so the compiler writes shards with it and the
launcher checks them with it. A shard is a flat file of little-endian uint16 or uint32 token ids,
optionally behind an llm.c header (256 int32: magic, version, number of tokens; the magic names the
dtype). A prepared folder holds `train/` and `val/` shards and `manifest.json`: which tokenizer made
them (kind, sha256, vocabulary size), from which corpus (sha256), and how many tokens each shard holds.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .artifact import Artifact
from .files import write_text_atomic
from .vocabulary import TokenDtype

DTYPE_BYTES: dict[str, int] = {"uint16": 2, "uint32": 4}
# llm.c shard headers: 256 int32 (magic, version, num_tokens), then the tokens; the magic names the dtype.
LLMC_MAGIC: dict[int, str] = {20240520: "uint16", 20240801: "uint32"}
LLMC_VERSION = 1
LLMC_HEADER_BYTES = 256 * 4

SHARDS_MANIFEST_FILE = "manifest.json"
TRAIN_DIR, VAL_DIR = "train", "val"
SCHEMA_VERSION = "megaspec.shards.v1"


def dtype_for_vocab(vocab_size: int) -> TokenDtype:
    """The smallest dtype that holds every token id of a vocabulary."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"


def llmc_header(dtype: str, num_tokens: int) -> bytes:
    """The 1 KiB header of a shard of `num_tokens` tokens of `dtype`."""
    magic = next(m for m, d in LLMC_MAGIC.items() if d == dtype)
    return struct.pack("<3i", magic, LLMC_VERSION, num_tokens).ljust(LLMC_HEADER_BYTES, b"\0")


def parse_llmc_header(head: bytes) -> tuple[str, int] | None:
    """(dtype, claimed number of tokens) of a shard's first bytes, or None when it has no llm.c header."""
    if len(head) < LLMC_HEADER_BYTES or struct.unpack_from("<i", head)[0] not in LLMC_MAGIC:
        return None
    magic, _, claimed = struct.unpack_from("<3i", head)
    return LLMC_MAGIC[magic], claimed


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerRef(_Part):
    kind: Literal["bytes", "huggingface"]
    name: str  # `bytes`, or the tokenizer file's name
    sha256: str | None  # of the tokenizer JSON's bytes; None for the built-in byte tokenizer
    vocab_size: int


class CorpusFile(_Part):
    path: str  # as named on the command line, or relative to the folder that was named
    sha256: str
    num_bytes: int


class Shard(_Part):
    file: str  # relative to the prepared folder: `train/shard_000000.bin`
    num_tokens: int


class ShardManifest(_Part, Artifact):
    KIND = "shard manifest"

    schema_version: Literal[SCHEMA_VERSION] = SCHEMA_VERSION
    megaspec_version: str
    dtype: TokenDtype
    tokenizer: TokenizerRef
    corpus_sha256: str  # sha256 of the `sha256sum` lines of the corpus files, in order
    corpus: list[CorpusFile]
    field: str | None = None  # the `.jsonl` field read
    val_fraction: float
    train: list[Shard] = Field(default_factory=list)
    val: list[Shard] = Field(default_factory=list)

    def num_tokens(self, split: Literal["train", "val"]) -> int:
        return sum(s.num_tokens for s in getattr(self, split))


def write_shard_manifest(folder: str | Path, manifest: ShardManifest) -> Path:
    return write_text_atomic(Path(folder) / SHARDS_MANIFEST_FILE, manifest.model_dump_json(indent=2) + "\n")


def read_shard_manifest(folder: str | Path) -> ShardManifest:
    """The manifest of a prepared folder, checking its schema version first."""
    return ShardManifest.read(Path(folder) / SHARDS_MANIFEST_FILE)


def prepared_folder(path: str | Path) -> Path | None:
    """`path` itself when it is a prepared folder (a manifest in it), else None."""
    root = Path(path)
    return root if (root / SHARDS_MANIFEST_FILE).is_file() else None
