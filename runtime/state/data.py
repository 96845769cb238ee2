"""Batches for the loop: synthetic learnable tokens, or uint16/uint32 token shards read strided.

Every sample has a GLOBAL index (step, micro-step, rank, row), so a world of 1 and a world of 4
see the same samples in the same optimizer step and get the same losses. Before training, ranks
agree on the number of micro-steps (all_reduce MIN): a rank that runs out first would otherwise
skip a collective and hang its peers until the timeout.
"""

from __future__ import annotations

import bisect
import itertools
import mmap
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..contract.errors import InsufficientDataError
from ..contract.plan import Plan
from .data_check import BadDataError, check_shards, manifest_of, shard_files, token_layout


@dataclass(frozen=True)
class BatchSlice:
    """Where a rank's micro-batch sits in the global sample order (the Plan's batch geometry, one rank)."""

    micro_batch: int
    seq_len: int
    grad_accum: int
    world_size: int
    global_batch: int  # the Plan's; it checks global = micro x accum x world
    rank: int

    @classmethod
    def of(cls, plan: Plan, rank: int) -> BatchSlice:
        t = plan.train
        return cls(t.micro_batch, t.seq_len, t.grad_accum, plan.distributed.world_size, t.global_batch, rank)

    def first_sample(self, step: int, micro_step: int) -> int:
        """Global index of row 0 of this rank's micro-batch at (0-based step, micro-step)."""
        return step * self.global_batch + (micro_step * self.world_size + self.rank) * self.micro_batch


def stage(plan: Plan) -> dict[str, object]:
    """Launcher side, before any rank starts: copy `data.stage_from` into the hot `data.path`, then
    check the shards the ranks will read (a bad shard is one MS813 line, not a crash at step 1)."""
    report = _copy(plan.data.stage_from, plan.data.path) if plan.data.stage_from and plan.data.path else {}
    if plan.data.source == "shards":
        if not plan.data.path:
            raise BadDataError("`data.source: shards` needs `data.path`")
        checked = check_shards(plan.data.path, plan.data.dtype, plan.train.seq_len, plan.model.vocab_size)
        report |= {"num_files": checked["num_files"], "num_tokens": checked["num_tokens"]} | _prepared(plan)
    elif plan.train.eval is not None:  # lint says so first (MS230); a plan is also read as it was written
        raise BadDataError("`train.eval` needs the `val/` split of a folder made by `megaspec data prepare`; "
                           "synthetic data has none: set `data.source: shards` and `data.path`, or remove `train.eval`")
    return report


def _prepared(plan: Plan) -> dict[str, object]:
    """What a prepared folder adds to the receipt: its tokenizer and corpus, and the `val/` split that
    `train.eval` reads, which must hold every window of one evaluation."""
    manifest = manifest_of(plan.data.path)
    if manifest is None:
        return {}
    report = {"tokenizer": manifest.tokenizer.name, "tokenizer_sha256": manifest.tokenizer.sha256,
              "corpus_sha256": manifest.corpus_sha256}
    if (e := plan.train.eval) is None:
        return report
    t = plan.train
    val = check_shards(plan.data.path, plan.data.dtype, t.seq_len, plan.model.vocab_size, split="val")
    needed = e.batches * t.global_batch
    if val["num_windows"] < needed:
        raise BadDataError(f"the `val/` shards of data.path `{plan.data.path}` hold {val['num_windows']} windows of "
                           f"`train.seq_len` + 1 tokens; one evaluation reads {needed} (`train.eval.batches` "
                           f"{e.batches} x `train.global_batch` {t.global_batch}); lower `train.eval.batches`, "
                           "or prepare with a larger `--val-fraction`")
    return report | {"val_num_files": val["num_files"], "val_num_tokens": val["num_tokens"]}


def _copy(src: str, dst: str) -> dict[str, object]:
    start = time.perf_counter()
    src_p, dst_p = Path(src), Path(dst)
    if not src_p.exists():
        raise BadDataError(f"data.stage_from `{src}` does not exist; nothing to stage into `{dst}`")
    if src_p.is_dir():
        shutil.copytree(src_p, dst_p, dirs_exist_ok=True)
        num_bytes = sum(p.stat().st_size for p in dst_p.rglob("*") if p.is_file())
    else:
        dst_p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_p, dst_p)
        num_bytes = dst_p.stat().st_size
    return {"staged_from": src, "staged_bytes": num_bytes, "staged_s": time.perf_counter() - start}


class SyntheticTokens:
    """Arithmetic progressions mod vocab: learnable (the stride is inferable from context)."""

    def __init__(self, vocab_size: int, seq_len: int, seed: int):
        self.vocab_size, self.seq_len, self.seed = vocab_size, seq_len, seed

    def rows(self, first: int, count: int) -> torch.Tensor:
        idx = torch.arange(first, first + count, dtype=torch.int64).unsqueeze(1)
        start = (idx * 2654435761 + self.seed) % self.vocab_size
        stride = 1 + (idx * 40503 + self.seed * 7) % 7
        return (start + stride * torch.arange(self.seq_len + 1)) % self.vocab_size

    def num_samples(self) -> int | None:
        return None  # unbounded


class TokenShards:
    """Flat token files (optionally with an llm.c header), concatenated; sample i is window i. A prepared
    folder's `split` (`train` or `val`) as its manifest lists it."""

    def __init__(self, path: str, dtype: str, seq_len: int, split: str = "train"):
        self.seq_len = seq_len
        manifest = manifest_of(path)
        dtype = manifest.dtype if manifest is not None else dtype
        self.arrays = [self._open(f, *token_layout(f, dtype)) for f in shard_files(path, split)]
        self.windows = [max(0, (len(a) - 1) // seq_len) for a in self.arrays]  # +1 token for the target
        self.offsets = list(itertools.accumulate(self.windows, initial=0))
        self.tokens_dropped = sum(len(a) - w * seq_len for a, w in zip(self.arrays, self.windows, strict=True))

    @staticmethod
    def _open(path: Path, dtype: torch.dtype, offset: int, num_tokens: int) -> torch.Tensor:
        """Memory-map a shard (copy-on-write: the file is never modified, torch wants a writable buffer)."""
        if num_tokens == 0:
            return torch.empty(0, dtype=dtype)
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        return torch.frombuffer(mapped, dtype=dtype, offset=offset, count=num_tokens)

    def num_samples(self) -> int:
        return self.offsets[-1]

    def rows(self, first: int, count: int) -> torch.Tensor:
        out = torch.empty((count, self.seq_len + 1), dtype=torch.int64)
        for j in range(count):
            shard = bisect.bisect_right(self.offsets, first + j) - 1
            start = (first + j - self.offsets[shard]) * self.seq_len
            out[j] = self.arrays[shard][start : start + self.seq_len + 1].to(torch.int64)
        return out


def open_source(plan: Plan, split: str = "train") -> SyntheticTokens | TokenShards:
    if plan.data.source == "synthetic":
        return SyntheticTokens(plan.model.vocab_size, plan.train.seq_len, plan.train.seed)
    return TokenShards(str(plan.data.path), plan.data.dtype, plan.train.seq_len, split)


def agree_on_steps(source: SyntheticTokens | TokenShards, geo: BatchSlice, steps: int,
                   device: torch.device) -> dict[str, int]:
    """All ranks agree on how many optimizer steps the data allows; too few -> MS805 on every rank."""
    total = source.num_samples()
    local = steps if total is None else total // geo.global_batch
    agreed = torch.tensor([local], dtype=torch.int64, device=device)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    available = int(agreed.item())
    if available < steps:
        raise InsufficientDataError(
            f"data has {available} optimizer steps of {geo.global_batch} x {geo.seq_len} tokens; the plan needs "
            f"{steps}; add shards or lower `train.steps`", stage="init")
    return {"micro_steps_available": available * geo.grad_accum, "micro_steps_needed": steps * geo.grad_accum,
            "tokens_dropped": getattr(source, "tokens_dropped", 0)}


def get_batch(source: SyntheticTokens | TokenShards, geo: BatchSlice, step: int, micro_step: int,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rows = source.rows(geo.first_sample(step, micro_step), geo.micro_batch)
    if device.type == "cuda":
        rows = rows.pin_memory().to(device, non_blocking=True)
    return rows[:, :-1], rows[:, 1:]
