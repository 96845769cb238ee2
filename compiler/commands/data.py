"""`megaspec data prepare CORPUS... --tokenizer T --out DIR`: text into the shards a spec trains on.

The work is `compiler/data/prepare.py`; this module is the command line around it: the options, a
progress bar on a terminal only, the summary, and every problem as one `error:` line with a fix.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import click

from .. import __version__
from ..codes import EXIT_USAGE
from .run_output import fail, signalled


@click.group()
def data() -> None:
    """Token data: `megaspec data prepare` turns a text corpus into the shards a spec's `data.path` reads."""


@data.command("prepare")
@click.argument("corpus", nargs=-1, required=True, type=click.Path(exists=True, readable=True))
@click.option("--tokenizer", "tokenizer_name", required=True, metavar="T",
              help="`bytes` (built in: one token per UTF-8 byte, vocabulary 256) or a Hugging Face "
                   "`tokenizers` JSON file (pip install 'megaspec[data]').")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="The folder to create: `train/`, `val/` and `manifest.json` (it must not exist, or be empty).")
@click.option("--val-fraction", default=0.005, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="The share of the corpus (its first bytes, at least one line or document) held out in `val/`.")
@click.option("--field", default="text", show_default=True, help="The field of each `.jsonl` record that holds its text.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=None,
              help="Tokenizer processes (default: the CPUs, at most 8).")
@click.option("--shard-tokens", type=click.IntRange(1024, 1 << 31), default=None,
              help="Tokens per shard file (default: 67,108,864).")
def prepare(corpus: tuple[str, ...], tokenizer_name: str, out: str, val_fraction: float, field: str,
            jobs: int | None, shard_tokens: int | None) -> None:
    """Tokenize CORPUS (text files, `.jsonl` files, or folders of them) into shards in the `--out` folder.

    Files are read in order (a folder's files sorted); the first `--val-fraction` of the corpus goes to
    `val/`, the rest to `train/`, in llm.c-format shards (uint16, or uint32 for a vocabulary over
    65,536), with `manifest.json` (tokens per shard, tokenizer and its sha256, corpus sha256). The same
    corpus and tokenizer give byte-identical output. Point a spec's `data.path` at it. Exit 0 on
    success, 1 on bad input (nothing is written), 2 on a usage error, 130 on Ctrl-C and 143 on SIGTERM
    (nothing is written either).
    """
    from megaspec.runtime.contract.errors import launcher_signals, signal_name, signal_of

    from ..data.corpus import CorpusError
    from ..data.prepare import DEFAULT_SHARD_TOKENS
    from ..data.tokenizer import load_spec

    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        fail(f"`{out}` already exists and is not empty", "Pass a new folder to `--out`, or remove this one")
    if tokenizer_name != "bytes" and not Path(tokenizer_name).is_file():
        fail(f"`--tokenizer {tokenizer_name}`: no such file", "Pass `bytes` or a tokenizers JSON file",
             code=EXIT_USAGE)
    try:
        tokenizer = load_spec(tokenizer_name)
        with launcher_signals():  # SIGTERM and SIGHUP stop it as Ctrl-C does: the temp folder is removed
            _run(list(corpus), tokenizer, target, field, val_fraction, jobs or min(8, os.cpu_count() or 1),
                 shard_tokens or DEFAULT_SHARD_TOKENS)
    except KeyboardInterrupt as e:
        fail(f"interrupted by {signal_name(signal_of(e))}; nothing was written to `{out}`", code=signalled(signal_of(e)))
    except CorpusError as e:  # TokenizerError is one
        fail(str(e), e.hint)
    except BrokenProcessPool:
        fail("a tokenizer process died (out of memory?); nothing was written", "Retry with fewer `-j` processes")


def _run(paths: list[str], tokenizer, out: Path, field: str, val_fraction: float, jobs: int,
         shard_tokens: int) -> None:
    from ..data.corpus import corpus_files
    from ..data.prepare import prepare

    start = time.perf_counter()
    total = sum(f.path.stat().st_size for f in corpus_files(paths))
    with click.progressbar(length=total, label="tokenizing", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        manifest = prepare(paths, tokenizer, out, field=field, val_fraction=val_fraction, jobs=jobs,
                           shard_tokens=shard_tokens, on_bytes=bar.update, version=__version__)
    elapsed = time.perf_counter() - start
    num_tokens = manifest.num_tokens("train") + manifest.num_tokens("val")
    click.echo(f"{out}: {manifest.num_tokens('train'):,} train tokens in {len(manifest.train)} shard(s), "
               f"{manifest.num_tokens('val'):,} val tokens in {len(manifest.val)} shard(s); "
               f"{manifest.tokenizer.name} (vocabulary {manifest.tokenizer.vocab_size:,}, {manifest.dtype}); "
               f"{num_tokens / max(elapsed, 1e-9):,.0f} tokens/s")
    click.echo(f"  = use it: data: {{source: shards, path: {out.resolve()}}}")


COMMANDS = [data]
