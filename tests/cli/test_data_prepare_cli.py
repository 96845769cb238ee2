"""`megaspec data prepare`: a few KB of real text through the real command, the real `tokenizers`
library (a BPE trained here, no download) and the runtime's own shard reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megaspec.compiler.cli import cli
from megaspec.compiler.data import prepare as prepare_module
from megaspec.runtime.contract.shards import LLMC_HEADER_BYTES, parse_llmc_header, read_shard_manifest

LINES = [f"line {i}: the quick brown fox {i * 7 % 13} jumps over the lazy dog\n" for i in range(60)]


def prepare(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["data", "prepare", *args])
    return result.exit_code, result.output


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("".join(LINES[:30]))
    (root / "sub" / "b.jsonl").write_text("".join(json.dumps({"text": line, "id": i}) + "\n"
                                                  for i, line in enumerate(LINES[30:])))
    (root / ".hidden").write_bytes(b"\0binary, skipped")
    return root


def bpe_tokenizer(path: Path, vocab_size: int = 320) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(LINES, trainer=trainer)
    tok.save(str(path))
    return path


def tokens_of(shard: Path) -> list[int]:
    data = shard.read_bytes()
    dtype, count = parse_llmc_header(data)
    width = 2 if dtype == "uint16" else 4
    body = data[LLMC_HEADER_BYTES:]
    assert len(body) == count * width
    return [int.from_bytes(body[i:i + width], "little") for i in range(0, len(body), width)]


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bytes_shards_hold_the_corpus_in_order_val_first(corpus: Path, tmp_path: Path):
    code, output = prepare(str(corpus), "--tokenizer", "bytes", "--out", str(tmp_path / "out"),
                           "--val-fraction", "0.1")
    assert code == 0, output
    out = tmp_path / "out"
    manifest = read_shard_manifest(out)
    text = bytes(tokens_of(out / "val/shard_000000.bin") + tokens_of(out / "train/shard_000000.bin")).decode()
    assert text == "".join(LINES)  # jsonl documents already end with a line end
    total = sum(len(line) for line in LINES)
    val = manifest.num_tokens("val")
    assert val >= 0.1 * len((corpus / "a.txt").read_bytes()) and text[:val].endswith("\n") and val < total / 5
    assert [f.path for f in manifest.corpus] == [f"{corpus}/a.txt", f"{corpus}/sub/b.jsonl"]
    assert manifest.dtype == "uint16" and manifest.tokenizer.vocab_size == 256 and manifest.field == "text"
    assert f"path: {out.resolve()}" in output


def test_same_corpus_and_tokenizer_give_byte_identical_output_whatever_the_jobs(corpus, tmp_path, monkeypatch):
    tok = bpe_tokenizer(tmp_path / "tok.json")
    monkeypatch.setattr(prepare_module, "BATCH_BYTES", 256)  # many batches: two processes really share them
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out-{jobs}"
        code, output = prepare(str(corpus), "--tokenizer", str(tok), "--out", str(out), "-j", jobs,
                               "--shard-tokens", "1024")
        assert code == 0, output
        outs.append(files_of(out))
    assert outs[0] == outs[1]
    assert len([f for f in outs[0] if f.startswith("train/")]) >= 1


def test_a_huggingface_tokenizer_round_trips_and_is_named_by_its_sha256(corpus, tmp_path):
    import hashlib

    from tokenizers import Tokenizer

    tok = bpe_tokenizer(tmp_path / "tok.json")
    out = tmp_path / "out"
    assert prepare(str(corpus), "--tokenizer", str(tok), "--out", str(out))[0] == 0
    manifest = read_shard_manifest(out)
    assert manifest.tokenizer.sha256 == hashlib.sha256(tok.read_bytes()).hexdigest()
    assert manifest.tokenizer.kind == "huggingface" and manifest.tokenizer.vocab_size == 320
    ids = [t for s in manifest.val + manifest.train for t in tokens_of(out / s.file)]
    assert Tokenizer.from_file(str(tok)).decode(ids) == "".join(LINES)


def test_shards_split_at_shard_tokens_and_the_runtime_reads_them(corpus, tmp_path):
    from megaspec.runtime.state.data import TokenShards
    from megaspec.runtime.state.data_check import check_shards

    out = tmp_path / "out"
    assert prepare(str(corpus), "--tokenizer", "bytes", "--out", str(out), "--shard-tokens", "1024")[0] == 0
    manifest = read_shard_manifest(out)
    assert [s.num_tokens for s in manifest.train[:-1]] == [1024] * (len(manifest.train) - 1) and len(manifest.train) > 2
    checked = check_shards(str(out), "uint32", seq_len=16, vocab_size=256)  # the headers name uint16
    assert checked["num_files"] == len(manifest.train) and checked["num_tokens"] == manifest.num_tokens("train")
    first = TokenShards(str(out), "uint32", 16).rows(0, 1)[0].tolist()
    assert first == tokens_of(out / manifest.train[0].file)[:17]


def test_a_vocabulary_over_65536_gives_uint32_shards(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0} | {f"w{i}": i + 1 for i in range(70_000)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "big.json"))
    (tmp_path / "c.txt").write_text("w69999 w1\nw5 w65536 zzz\n")
    assert prepare(str(tmp_path / "c.txt"), "--tokenizer", str(tmp_path / "big.json"), "--out",
                   str(tmp_path / "out"))[0] == 0
    manifest = read_shard_manifest(tmp_path / "out")
    assert manifest.dtype == "uint32"
    assert tokens_of(tmp_path / "out/val/shard_000000.bin") + tokens_of(tmp_path / "out/train/shard_000000.bin") \
        == [70000, 2, 6, 65537, 0]


BAD = {
    "binary": ("bin.txt", b"text\nmore\x00\x01\x02", "bin.txt:2: a NUL byte"),
    "not-utf8": ("latin.txt", b"ok\nok\ncaf\xe9\n", "latin.txt:3: byte 0xe9 is not UTF-8"),
    "not-json": ("d.jsonl", b'{"text": "a"}\n\n{"text": oops}\n', "d.jsonl:3:10: not JSON"),
    "no-field": ("d.jsonl", b'{"text": "a"}\n{"body": "b"}\n', "d.jsonl:2: no `text` field"),
    "not-a-string": ("d.jsonl", b'{"text": 3}\n', "d.jsonl:1: `text` is int, not a string"),
    "empty": ("e.txt", b"", "holds no text"),
    "only-val": ("one.txt", b"one line\n", "too small to hold out"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_located_error_and_nothing_is_written(case, corpus, tmp_path):
    name, content, expected = BAD[case]
    (tmp_path / name).write_bytes(content)
    args = [str(tmp_path / name)] if case in ("empty", "only-val") else [str(corpus), str(tmp_path / name)]
    code, output = prepare(*args, "--tokenizer", "bytes", "--out", str(tmp_path / "out"))
    assert code == 1, output
    assert expected in output and "= help:" in output and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["corpus", name])  # no out, no temp folder


def test_an_invalid_tokenizer_json_is_refused_before_reading(corpus, tmp_path):
    (tmp_path / "tok.json").write_text('{"model": ')
    code, output = prepare(str(corpus), "--tokenizer", str(tmp_path / "tok.json"), "--out", str(tmp_path / "out"))
    assert code == 1 and "tok.json: not a Hugging Face tokenizers JSON file" in output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, expected", [
    (["--tokenizer", "missing.json"], "no such file"),
    (["--tokenizer", "bytes", "--val-fraction", "0"], "--val-fraction"),
])
def test_usage_errors_exit_2(corpus, tmp_path, args, expected):
    code, output = prepare(str(corpus), "--out", str(tmp_path / "out"), *args)
    assert code == 2 and expected in output


def test_a_folder_that_is_not_empty_is_never_overwritten(corpus, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep").write_text("mine")
    code, output = prepare(str(corpus), "--tokenizer", "bytes", "--out", str(tmp_path / "out"))
    assert code == 1 and "already exists" in output and (tmp_path / "out" / "keep").read_text() == "mine"


@pytest.mark.parametrize("signum, code", [(2, 130), (15, 143)])
def test_a_signal_mid_prepare_leaves_nothing(tmp_path, signum, code):
    """Sent once the first shard file exists in the temp folder (a 20 MB corpus takes seconds more)."""
    import subprocess

    from tests.conftest import MEGASPEC

    (tmp_path / "big.txt").write_text(("the quick brown fox jumps over the lazy dog " * 2 + "\n") * 250_000)
    proc = subprocess.Popen([*MEGASPEC, "data", "prepare", str(tmp_path / "big.txt"), "--tokenizer", "bytes",
                             "--out", str(tmp_path / "out"), "-j", "1", "--shard-tokens", "1024"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not any(tmp_path.glob(".out.*.tmp/train/shard_000001.bin")):
        assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]


def test_a_dead_prepares_temp_folder_is_removed_and_a_live_ones_kept(corpus, tmp_path):
    from megaspec.compiler.data.workdir import LOCK_FILE
    from megaspec.runtime.contract.claim import claim

    dead, live, unclaimed = (tmp_path / f".out.{n}.tmp" for n in ("dead", "live", "new"))
    for folder in (dead, live, unclaimed):
        (folder / "train").mkdir(parents=True)
    (dead / LOCK_FILE).write_text("4194305\n")  # its holder died: the lock is free
    with claim(live / LOCK_FILE):  # a prepare still writing
        code, output = prepare(str(corpus), "--tokenizer", "bytes", "--out", str(tmp_path / "out"))
    assert code == 0, output
    assert not dead.exists() and live.exists() and unclaimed.exists()  # one not yet claimed is not judged


def test_a_prepare_that_loses_the_race_for_out_discards_its_shards(corpus, tmp_path, monkeypatch):
    """Another prepare publishing `out` just before this one's rename is put there by a wrapped rename:
    a real race between two processes could be arranged only with timers."""
    from megaspec.compiler.data import workdir

    rename = workdir.os.rename

    def someone_else_first(src, dst):
        (Path(dst) / "theirs").mkdir(parents=True, exist_ok=True)
        rename(src, dst)

    monkeypatch.setattr(workdir.os, "rename", someone_else_first)
    code, output = prepare(str(corpus), "--tokenizer", "bytes", "--out", str(tmp_path / "out"))
    assert code == 1 and "was written by another process meanwhile" in output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["theirs"]
    assert not list(tmp_path.glob(".out.*"))

LINES_OF_ANYTHING = st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40),
                                       st.builds(lambda t: json.dumps({"text": t}), st.text(max_size=20)),
                                       st.builds(lambda v: json.dumps({"text": v}), st.integers())), max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES_OF_ANYTHING, suffix=st.sampled_from([".txt", ".jsonl"]))
def test_any_file_is_prepared_or_one_located_error_never_a_traceback(tmp_path_factory, lines, suffix):
    root = tmp_path_factory.mktemp("fuzz")
    data = b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in lines)
    (root / f"f{suffix}").write_bytes(data)
    result = CliRunner().invoke(cli, ["data", "prepare", str(root / f"f{suffix}"), "--tokenizer", "bytes",
                                      "--out", str(root / "out"), "--val-fraction", "0.3"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 0:
        assert read_shard_manifest(root / "out").num_tokens("train") > 0
    else:
        assert result.exit_code == 1 and result.output.startswith("error: ") and "Traceback" not in result.output
        assert not (root / "out").exists() and not list(root.glob(".out.*"))
