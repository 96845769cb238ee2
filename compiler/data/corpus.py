"""The corpus side of `megaspec data prepare`: which files, read in order, as pieces of text.

Files are read in a fixed order (the arguments in turn; a folder's files sorted by their path inside
it, hidden ones skipped), in chunks, so the corpus is never held whole. A `.jsonl` file is one JSON
object per line whose `field` is a document; any other file is UTF-8 text cut at line ends. A document that does not end with a line end gets one, so
documents never run into each other. The
first bytes of the corpus (`val_fraction` of them, at least one line or document) are the validation
split. Every problem is a `CorpusError` naming the file and the line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK_BYTES = 1 << 18  # text read (and handed to a tokenizer) at a time


class CorpusError(Exception):
    """A corpus file that cannot be read as text; the message names the file and the line."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    name: str  # as named on the command line, or relative to the folder that was named

    @property
    def is_jsonl(self) -> bool:
        return self.path.suffix.lower() == ".jsonl"


@dataclass(frozen=True)
class Piece:
    split: str  # `train` or `val`
    text: str
    num_bytes: int  # of the corpus it came from (for the progress bar)


def corpus_files(paths: list[str]) -> list[CorpusFile]:
    """The files of the corpus, in the order they are read."""
    found = []
    for arg in paths:
        root = Path(arg)
        if root.is_dir():
            inside = sorted(p for p in root.rglob("*") if p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(root).parts))
            found += [CorpusFile(p, f"{arg.rstrip('/')}/{p.relative_to(root).as_posix()}") for p in inside]
        else:
            found.append(CorpusFile(root, arg))
    return found


class CorpusReader:
    """The pieces of text of every file in order, with each file's sha256 once it has been read."""

    def __init__(self, files: list[CorpusFile], field: str, val_fraction: float):
        self.files, self.field = files, field
        total = sum(f.path.stat().st_size for f in files)
        self.val_left = max(1, math.ceil(val_fraction * total))  # bytes of the corpus still owed to val
        self.total_bytes = total
        self.sha256: dict[str, str] = {}

    def pieces(self) -> Iterator[Piece]:
        for file in self.files:
            digest = hashlib.sha256()
            yield from (self._jsonl if file.is_jsonl else self._text)(file, digest)
            self.sha256[file.name] = digest.hexdigest()

    def _split_of(self, num_bytes: int) -> str:
        if self.val_left <= 0:
            return "train"
        self.val_left -= num_bytes
        return "val"

    def _text(self, file: CorpusFile, digest: Any) -> Iterator[Piece]:
        line, carry = 1, b""
        with open(file.path, "rb") as f:
            while block := f.read(CHUNK_BYTES):
                digest.update(block)
                _refuse_binary(file, block, line)  # `carry` holds no line end
                data = carry + block
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                for raw in self._cut_for_val(data[:cut]):
                    yield self._piece(file, raw, line)
                    line += raw.count(b"\n")
        if carry:
            yield self._piece(file, carry, line)

    def _cut_for_val(self, data: bytes) -> list[bytes]:
        """`data` in pieces that are wholly validation or wholly training text, cut at a line end."""
        if not data or self.val_left <= 0 or self.val_left >= len(data):
            return [data] if data else []
        cut = data.find(b"\n", self.val_left - 1) + 1 or len(data)
        return [data[:cut], data[cut:]] if cut < len(data) else [data]

    def _piece(self, file: CorpusFile, raw: bytes, line: int) -> Piece:
        return Piece(self._split_of(len(raw)), _decode(file, raw, line), len(raw))

    def _jsonl(self, file: CorpusFile, digest: Any) -> Iterator[Piece]:
        with open(file.path, "rb") as f:
            for line, raw in enumerate(f, start=1):
                digest.update(raw)
                _refuse_binary(file, raw, line)
                if not raw.strip():
                    continue  # a blank line holds no document
                text = _field_of(file, _decode(file, raw, line), line, self.field)
                yield Piece(self._split_of(len(raw)), text, len(raw))


def _refuse_binary(file: CorpusFile, data: bytes, line: int) -> None:
    if (at := data.find(b"\0")) >= 0:
        where = line + data[:at].count(b"\n")
        raise CorpusError(f"{file.name}:{where}: a NUL byte: this is not a text file",
                          "Pass text (UTF-8) or .jsonl files only; move binary files out of the corpus folder")


def _decode(file: CorpusFile, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        where = line + raw[: e.start].count(b"\n")
        raise CorpusError(f"{file.name}:{where}: byte 0x{raw[e.start]:02x} is not UTF-8 text",
                          "Convert the file to UTF-8 (e.g. `iconv -t UTF-8`), or leave it out") from None


def _field_of(file: CorpusFile, line_text: str, line: int, field: str) -> str:
    try:
        record = json.loads(line_text.rstrip("\r\n"))  # so a column past the end is on this line
    except json.JSONDecodeError as e:
        raise CorpusError(f"{file.name}:{line}:{e.colno}: not JSON ({e.msg})",
                          "Each line of a .jsonl file is one JSON object") from None
    if not isinstance(record, dict) or field not in record:
        raise CorpusError(f"{file.name}:{line}: no `{field}` field in this record",
                          "Pass the field that holds the text with `--field`") from None
    if not isinstance(record[field], str):
        raise CorpusError(f"{file.name}:{line}: `{field}` is {type(record[field]).__name__}, not a string",
                          "The field named by `--field` must hold the document's text")
    text = record[field]
    return text if text.endswith("\n") else text + "\n"  # documents end at a line end, as lines of text do
