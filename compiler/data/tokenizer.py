"""The tokenizers of `megaspec data prepare`: `bytes` (built in: each UTF-8 byte is a token, vocabulary
256) or a Hugging Face `tokenizers` JSON file (the optional `megaspec[data]` extra, imported only here).

`TokenizerSpec` is what the command checks once and what each worker process loads again; `encode`
turns texts into the shard format's little-endian token bytes. No special tokens are added: a piece
of text is a slice of a document, not a document.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from megaspec.runtime.contract.shards import TokenizerRef, dtype_for_vocab

from .corpus import CorpusError

BYTES = "bytes"
ARRAY_CODES = {"uint16": "H", "uint32": "I"}


class TokenizerError(CorpusError):
    """A tokenizer that cannot be used; the message says which and why (with a hint, as a corpus error)."""


@dataclass(frozen=True)
class TokenizerSpec:
    path: str | None  # None: the byte tokenizer
    ref: TokenizerRef

    @property
    def dtype(self) -> str:
        return dtype_for_vocab(self.ref.vocab_size)


def load_spec(name: str) -> TokenizerSpec:
    """`bytes`, or a tokenizers JSON file checked by loading it: its vocabulary size and sha256."""
    if name == BYTES:
        return TokenizerSpec(None, TokenizerRef(kind="bytes", name=BYTES, sha256=None, vocab_size=256))
    path = Path(name)
    tokenizer = _hf_tokenizer(path)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    ref = TokenizerRef(kind="huggingface", name=path.name, sha256=sha256,
                       vocab_size=tokenizer.get_vocab_size(with_added_tokens=True))
    return TokenizerSpec(str(path), ref)


def _hf_tokenizer(path: Path) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise TokenizerError(f"`--tokenizer {path}` needs the `tokenizers` package, which is not installed",
                             "pip install 'megaspec[data]', or use `--tokenizer bytes`") from None
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for any bad file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TokenizerError(f"{path}: not a Hugging Face tokenizers JSON file ({reason})",
                             "Pass the `tokenizer.json` that `Tokenizer.save` writes, or `--tokenizer bytes`") from None


_loaded: dict[str, Any] = {}  # this process's tokenizer, by spec path


def start_worker(spec: TokenizerSpec) -> None:
    """A worker process's start: one tokenizer thread each (the processes are the parallelism); a Ctrl-C
    is the parent's to handle (it stops handing out work and removes what it wrote)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    if spec.path is not None:
        _loaded[spec.path] = _hf_tokenizer(Path(spec.path))


def encode(spec: TokenizerSpec, texts: list[str]) -> bytes:
    """The token ids of `texts`, one after the other, as the shard format's little-endian bytes."""
    if spec.path is None:
        raw = "".join(texts).encode("utf-8")
        out = bytearray(2 * len(raw))
        out[0::2] = raw  # uint16 little-endian: the byte, then 0
        return bytes(out)
    tokenizer = _loaded.get(spec.path) or _loaded.setdefault(spec.path, _hf_tokenizer(Path(spec.path)))
    ids = array(ARRAY_CODES[spec.dtype])
    for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.extend(encoding.ids)
    if sys.byteorder == "big":
        ids.byteswap()
    return ids.tobytes()
