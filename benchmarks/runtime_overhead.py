"""What megaspec's loop costs: run_plan beside a bare hand-written FSDP2 loop, in one run.

Same model (runtime/train/model.py), same batch, same ranks, same steps, same launcher; tokens/s of
both measured the same way (step 1 and the warmup steps excluded). Goal: ratio >= 0.97.

    python benchmarks/runtime_overhead.py --ranks 2 --steps 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from megaspec.runtime.contract.plan import Plan
from megaspec.runtime.contract.presets import ModelDims, flops_per_token, num_params
from megaspec.runtime.launch.entry import run_plan
from megaspec.runtime.state.data import SyntheticTokens
from megaspec.runtime.train.model import build_model, cross_entropy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.runtime.conftest import make_plan  # noqa: E402  (the same plan fixture the tests use)

DIMS = ModelDims(n_layers=4, d_model=128, n_heads=4, n_kv_heads=4, d_ff=384, vocab_size=512, max_seq_len=128)


def bench_plan(ranks: int, steps: int, warmup: int, seq_len: int, global_batch: int) -> Plan:
    model = {"preset": None, **DIMS.as_dict(), "num_params": num_params(DIMS),
             "flops_per_token": flops_per_token(DIMS, seq_len)}
    return make_plan(ranks, global_batch=global_batch, steps=steps, seq_len=seq_len, model=model,
                     train={"warmup_steps": warmup, "log_every": steps})


def bare_loop(plan_json: str) -> float:
    """The loop a person would write by hand: FSDP2 per block + root, AdamW, clip, no bookkeeping."""
    plan = Plan.model_validate_json(plan_json)
    t = plan.train
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // plan.distributed.world_size))
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    model = build_model(DIMS, t.seed, torch.device("cpu"))
    for module in [model.tok_embeddings, *model.layers.values()]:
        fully_shard(module, mesh=mesh)
    fully_shard([model.norm, model.output], mesh=mesh, reshard_after_forward=False)
    fully_shard(model, mesh=mesh)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(0.9, 0.95), weight_decay=t.weight_decay,
                            foreach=True)
    source = SyntheticTokens(DIMS.vocab_size, t.seq_len, t.seed)
    times = []
    for step in range(t.steps):
        start = time.perf_counter()
        rows = source.rows(step * t.global_batch + rank * t.micro_batch, t.micro_batch)
        loss = cross_entropy(model(rows[:, :-1]), rows[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - start)
    dist.barrier()
    dist.destroy_process_group()
    measured = times[1 + t.warmup_steps :]
    return t.global_batch * t.seq_len * len(measured) / sum(measured)


def run_bare(plan: Plan, log_dir: str) -> float:
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=plan.distributed.world_size, run_id="bare",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn",
                          logs_specs=DefaultLogsSpecs(log_dir=log_dir))
    return elastic_launch(config, bare_loop)(plan.to_json())[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--global-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=6, help="pairs of back-to-back runs")
    args = parser.parse_args()
    plan = bench_plan(args.ranks, args.steps, args.warmup, args.seq_len, args.global_batch)
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for which in (("bare", "megaspec") if i % 2 == 0 else ("megaspec", "bare")):
                if which == "bare":
                    bare.append(run_bare(plan, f"{tmp}/bare-{i}"))
                    continue
                receipt = run_plan(plan, f"{tmp}/megaspec-{i}")
                assert receipt["status"] == "ok", receipt["error"]
                ours.append(receipt["metrics"]["tokens_per_s"])
    # This VM's speed drifts by 20% over minutes, more than the overhead being measured. The two
    # runs of a pair are back to back (their order alternates), so the ratio within a pair is the
    # honest number.
    paired = sorted(o / b for o, b in zip(ours, bare, strict=True))
    print(f"model {num_params(DIMS):,} params, {args.ranks} ranks x {args.global_batch // args.ranks} seq x "
          f"{args.seq_len} tokens, {args.steps} steps ({1 + args.warmup} excluded), {args.repeats} pairs")
    print(f"bare FSDP2 loop : median {statistics.median(bare):10,.0f} tok/s   runs {[round(x) for x in bare]}")
    print(f"megaspec run_plan: median {statistics.median(ours):10,.0f} tok/s   runs {[round(x) for x in ours]}")
    print(f"ratio megaspec / bare, median of {len(paired)} back-to-back pairs: {statistics.median(paired):.3f}"
          f" (pairs {', '.join(f'{r:.3f}' for r in paired)}; best of each: {max(ours) / max(bare):.3f})"
          f"  goal >= 0.97")

if __name__ == "__main__":
    main()
