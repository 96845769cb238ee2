"""megaspec vs torchtitan on one GPU: the dense-1b preset, same dims, same batch, bf16 + compile.

Prints tokens/s and MFU of both. torchtitan runs as `python -m torchtitan.train` (through a
small shim that registers a `megaspec-1b` llama3 flavor with our dims) and is read from its
log lines (`tps: ... mfu: ...%`, the value at the last log step). Skips with a message when
there is no CUDA device or torchtitan is not installed.

    python benchmarks/gpu_throughput.py --batch 4 --seq-len 2048 --steps 40
    python benchmarks/gpu_throughput.py --torchtitan-args "--training.dataset c4_test"
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

# torchtitan derives d_ff = multiple_of * ceil(multiplier * 8 * dim / 3 / multiple_of): 1.5 and 1024 give 8192.
SHIM = """
import runpy, sys
import torchtitan.models.llama3 as llama3
from torchtitan.models.llama3.model.args import TransformerModelArgs
flavors = getattr(llama3, "llama3_args", None) or getattr(llama3, "llama3_configs")
flavors["megaspec-1b"] = TransformerModelArgs(dim=2048, n_layers=16, n_heads=16, n_kv_heads=8, vocab_size=32000,
                                              ffn_dim_multiplier=1.5, multiple_of=1024, rope_theta=10000)
sys.argv = ["torchtitan.train", *sys.argv[1:]]
runpy.run_module("torchtitan.train", run_name="__main__")
"""


def skip_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device: this benchmark needs one GPU"
    if importlib.util.find_spec("torchtitan") is None:
        return "torchtitan is not installed (pip install torchtitan==0.3.*)"
    return None


def run_megaspec(batch: int, seq_len: int, steps: int, warmup: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import torch

    from megaspec.runtime.contract.gpus import device_gpu_type
    from megaspec.runtime.contract.presets import PRESETS, flops_per_token, num_params
    from megaspec.runtime.launch.entry import run_plan
    from tests.runtime.conftest import make_plan

    dims = PRESETS["dense-1b"]
    gpu = device_gpu_type(torch.cuda.get_device_name(0)) or "H100"  # the plan needs a known type
    plan = make_plan(1, global_batch=batch, steps=steps, seq_len=seq_len,
                     model={"preset": "dense-1b", **dims.as_dict(), "num_params": num_params(dims),
                            "flops_per_token": flops_per_token(dims, seq_len)},
                     train={"precision": "bf16", "compile": True, "warmup_steps": warmup, "lr": 3e-4,
                            "log_every": 10},
                     distributed={"backend": "nccl", "device": "cuda", "init_timeout_s": 900},
                     resources={"gpu_type": gpu, "gpu_count": 1})
    with tempfile.TemporaryDirectory() as tmp:
        receipt = run_plan(plan, Path(tmp) / "run")
    if receipt["status"] != "ok":
        raise SystemExit(f"megaspec run failed: {receipt['error']}")
    return receipt["metrics"]


def run_torchtitan(batch: int, seq_len: int, steps: int, extra: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        shim = Path(tmp) / "titan_shim.py"
        shim.write_text(SHIM)
        args = ["--model.name", "llama3", "--model.flavor", "megaspec-1b", "--training.local_batch_size",
                str(batch), "--training.seq_len", str(seq_len), "--training.steps", str(steps),
                "--compile.enable", "--metrics.log_freq", "10", "--job.dump_folder", tmp, *shlex.split(extra)]
        env = {**os.environ, "WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "localhost",
               "MASTER_PORT": "29511"}
        done = subprocess.run([sys.executable, str(shim), *args], capture_output=True, text=True, env=env)
    log = done.stdout + done.stderr
    tps = re.findall(r"tps:\s*([\d,]+)", log)
    mfu = re.findall(r"mfu:\s*([\d.]+)%", log)
    if done.returncode != 0 or not tps:
        raise SystemExit(f"torchtitan run failed (exit {done.returncode}):\n{log[-3000:]}")
    return {"tokens_per_s": float(tps[-1].replace(",", "")), "mfu_pct": float(mfu[-1]) if mfu else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--torchtitan-args", default="", help="extra flags for torchtitan (dataset, tokenizer)")
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        print(f"skipped: {reason}")
        return
    ours = run_megaspec(args.batch, args.seq_len, args.steps, args.warmup)
    titan = run_torchtitan(args.batch, args.seq_len, args.steps, args.torchtitan_args)
    print(f"dense-1b, 1 GPU, batch {args.batch} x {args.seq_len}, bf16 + compile, {args.steps} steps")
    print(f"megaspec  : {ours['tokens_per_s']:10,.0f} tok/s   MFU {ours['mfu_pct'] or float('nan'):.1f}%")
    print(f"torchtitan: {titan['tokens_per_s']:10,.0f} tok/s   MFU {titan['mfu_pct'] or float('nan'):.1f}%")
    print(f"ratio     : {ours['tokens_per_s'] / titan['tokens_per_s']:.3f}")


if __name__ == "__main__":
    main()
