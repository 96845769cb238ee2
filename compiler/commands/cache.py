"""`megaspec cache seed SPEC`: make the compile-cache seed a `cache.policy: require-seed` run restores.

The spec is linted and lowered like `apply` does, then the runtime compiles its model on one device
(`python -m megaspec.runtime.seed`, a fresh process: Inductor reads its cache dir from the
environment) and writes `cache.seed`: torch's cache artifacts, the compiled kernels and a
`seed.json` of what it was built for (torch, device, model shape, precision, compile settings).
Here that is this machine's CPU (a `target: local` spec). A GPU seed must be compiled on the GPU
type the run uses, by a one-GPU Modal app that is not generated yet: Modal specs are refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from .run_output import fail


@click.group()
def cache() -> None:
    """The compile cache: `megaspec cache seed SPEC` makes the seed `cache.policy: require-seed` restores."""


@cache.command("seed")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where the seed goes (default: the spec's `cache.seed`).")
def seed(spec: str, out_dir: str | None) -> None:
    """Compile SPEC's model once on one device and save its compile cache as the seed.

    Runs the spec's micro-batch through the model with `train.compile` as a rank would (activation
    checkpointing, per-block compile, FSDP2), then writes torch's cache artifacts, the compiled
    kernels and `seed.json` (torch version, device, model shape, precision, compile settings).
    A `require-seed` run refuses a seed built for anything else. Exit 0 on success, 1 otherwise.
    """
    plan = _seed_plan(spec)
    where = Path(out_dir or plan.cache.seed or "")
    if not (out_dir or plan.cache.seed):
        fail(f"`{spec}` sets no `cache.seed`", "Set `cache.seed` in the spec, or give `-o DIR`")
    click.echo(f"cache seed: compiling {plan.name} on one {plan.distributed.device} device -> {where}", err=True)
    proc = subprocess.run([sys.executable, "-m", "megaspec.runtime.seed", "-", str(where)], input=plan.to_json(),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        fail(f"the seed was not made (the compile process exited {proc.returncode}):\n{tail}",
             "Fix what the last lines say; `megaspec apply` the spec with `cache.policy: cold` to see it train")
    manifest = json.loads(proc.stdout.strip().splitlines()[-1])
    click.echo(_summary(where, manifest))


def _seed_plan(spec: str):
    """The Plan the seed is built for: the spec as `apply` runs it here (refused when nothing compiles)."""
    from ..codegen.build import plan_for
    from .apply import _checked_spec

    checked = _checked_spec(spec, None)
    if checked.spec.target != "local":
        fail(f"`{spec}` runs on Modal GPUs: its seed must be compiled on that GPU type, which "
             "`megaspec cache seed` does not generate yet",
             "Until it does, use `cache.policy: warm` for GPU specs: every rank shares the cache Volume, "
             "warm after the first run")
    plan = plan_for(checked)
    if not plan.train.compile:
        fail(f"`{spec}` has `train.compile: false`: there is no compile to seed", "Set `train.compile: true`")
    return plan


def _summary(where: Path, manifest: dict) -> str:
    k = manifest["key"]
    m = k["model"]
    return (f"seed: {where}\n"
            f"  built for: torch {k['torch']}, {k['device']}, {m['n_layers']} layers x d_model {m['d_model']}, "
            f"micro_batch {k['micro_batch']} x seq_len {k['seq_len']}, {k['precision']}, "
            f"activation_checkpointing {k['activation_checkpointing']}\n"
            f"  compile: {manifest['compile_s']:.1f} s; {manifest['inductor_files']} cache files, "
            f"{manifest['artifacts_bytes']:,} bytes of torch cache artifacts\n"
            "  a run with `cache.policy: require-seed` and this `cache.seed` restores it before compiling\n")


COMMANDS = [cache]
