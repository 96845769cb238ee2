"""`megaspec data prepare` on 100 MB of text: tokens/s, peak memory, and whether two runs are byte-identical.

The corpus is generated here (deterministic, no download): a folder of text files and `.jsonl` files
of Zipf-distributed made-up words. Two tokenizers: `bytes`, and a byte-level BPE trained here with
the `tokenizers` library on a 2 MB sample. Each is run twice through the real command line, each run
in a process of its own, so its peak RSS (the command and its tokenizer processes, from `wait4`) is
its own; the outputs are compared byte for byte. Memory is bounded: it does not grow with the corpus.
Run: `python benchmarks/data_prepare.py [--mb 100] [--jobs N]` (needs `pip install 'megaspec[data]'`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import MEGASPEC, ROOT, arguments

NUM_WORDS = 20_000
FILE_MB = 10


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """Made-up words and their cumulative Zipf weights."""
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(NUM_WORDS)]
    return words, list(itertools.accumulate(1 / (rank + 1) for rank in range(NUM_WORDS)))


def write_corpus(root: Path, total_mb: int) -> int:
    """Text and .jsonl files of about FILE_MB each, written a line at a time; their total bytes."""
    rng = random.Random(0)
    words, cum_weights = vocabulary(rng)
    root.mkdir(parents=True)
    for index in range(max(1, total_mb // FILE_MB)):
        jsonl = index % 4 == 3
        with open(root / f"part-{index:03d}.{'jsonl' if jsonl else 'txt'}", "w") as f:
            while f.tell() < FILE_MB << 20:
                line = " ".join(rng.choices(words, cum_weights=cum_weights, k=rng.randint(5, 40))) + "."
                f.write(json.dumps({"text": line}) + "\n" if jsonl else line + "\n")
    return sum(p.stat().st_size for p in root.iterdir())


def train_bpe(corpus: Path, out: Path, vocab_size: int = 8192) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    sample = (corpus / "part-000.txt").read_text()[: 2 << 20].splitlines()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(sample, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.save(str(out))
    return out


def prepare_once(corpus: Path, tokenizer: str, out: Path, jobs: int) -> tuple[float, int]:
    """(seconds, peak RSS in KiB of the command and its tokenizer processes) of one prepare."""
    start = time.perf_counter()
    proc = subprocess.Popen([*MEGASPEC, "data", "prepare", str(corpus), "--tokenizer", tokenizer, "--out", str(out),
                             "-j", str(jobs)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"prepare failed:\n{proc.stdout.read().decode()}{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def main() -> None:
    parser = arguments(__doc__, repeats=2)
    parser.add_argument("--mb", type=int, default=100, help="corpus size in MB (default 100)")
    parser.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1), help="tokenizer processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        start = time.perf_counter()
        corpus_bytes = write_corpus(tmp / "corpus", args.mb)
        print(f"corpus: {corpus_bytes / 1e6:.1f} MB in {len(list((tmp / 'corpus').iterdir()))} files "
              f"(generated in {time.perf_counter() - start:.1f} s); {args.jobs} tokenizer process(es), "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        for label, tokenizer in (("bytes", "bytes"), ("bpe-8192", str(train_bpe(tmp / "corpus", tmp / "bpe.json")))):
            digests = []
            for run in range(args.repeats):
                out = tmp / f"{label}-{run}"
                seconds, rss_kib = prepare_once(tmp / "corpus", tokenizer, out, args.jobs)
                manifest = json.loads((out / "manifest.json").read_text())
                tokens = sum(s["num_tokens"] for s in manifest["train"] + manifest["val"])
                digests.append(digest(out))
                print(f"{label:9} run {run + 1}: {tokens:,} tokens in {seconds:.1f} s = {tokens / seconds:,.0f} tokens/s "
                      f"({corpus_bytes / 1e6 / seconds:.1f} MB/s); peak RSS {rss_kib / 1024:.0f} MiB")
                if run:
                    shutil.rmtree(out)
            print(f"{label:9} byte-identical across {args.repeats} runs: {'yes' if len(set(digests)) == 1 else 'NO'} "
                  f"(sha256 {digests[0][:16]})")


if __name__ == "__main__":
    main()
