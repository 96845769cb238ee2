"""Rehearsal: a GPU spec lowered for `--target local` becomes the same run on CPU ranks, in under a minute.

A rehearsal proves the topology, the collectives and the code path, not throughput. It keeps what a
hang or a crash depends on: the world size, `train.seq_len`, the user's own model, compile (the
same per-block `fullgraph` capture by dynamo, without generating kernels), activation
checkpointing, checkpoints (at an interval that fires within its steps) and the resume setting.
It shrinks the rest: one sequence per rank and no accumulation, the diagnostic preset, a few
steps, synthetic data, no Modal state. Every substitution is written down for `run.substitutions`
in the Plan (and so the receipt and `apply`'s output), so a rehearsal is never mistaken for the run.
"""

from __future__ import annotations

from megaspec.runtime.contract.plan import TrainPlan
from megaspec.runtime.contract.presets import DIAGNOSTIC_PRESET

from ..spec.model import Spec
from ..spec.model_dims import model_dims, seq_len
from ..spec.topology import geometry, precision

REHEARSAL_STEPS = 4  # one warmup step and three measured
REHEARSAL_BENCH = {"sizes": ["1MiB"], "iters": 2, "warmup_iters": 1, "gemm_dims": [256]}  # each op runs, briefly
REHEARSAL_CHECKPOINT_EVERY = 2  # fires at step 2 and at the last step: a save and a save after it
# dynamo captures each block with fullgraph=True as on the GPU (a graph break fails here too) and runs the
# captured graph as it is: Inductor takes minutes per rank on CPU, and aot_eager measured 55 s of first-step
# compile against 20 s for eager (h200x8, 8 ranks on this 2-core machine)
REHEARSAL_COMPILE_BACKEND = "eager"


def rehearse(spec: Spec) -> tuple[Spec, list[str]]:
    """A GPU spec rewritten for CPU ranks here: same world size, sequence length and code paths, small everything else."""
    geo = geometry(spec)
    t = spec.train
    steps = min(t.steps, REHEARSAL_STEPS)
    warmup = min(t.warmup_steps, 1, steps - 1)
    words = [f"GPU `{spec.resources.gpu.primary.text}` x {geo.nodes} node(s) -> {geo.world_size} CPU ranks (gloo)"]
    words += _model_words(spec)
    words += _changed("train.micro_batch", geo.micro_batch, 1)
    words += _changed("train.global_batch", geo.global_batch, geo.world_size)  # one micro-batch per rank: no accumulation
    words += _changed("train.steps", t.steps, steps) + _changed("train.warmup_steps", t.warmup_steps, warmup)
    words += _changed("train.precision", precision(spec, geo), "fp32")
    if t.compile:
        words.append(f"train.compile kept: backend `inductor` -> `{REHEARSAL_COMPILE_BACKEND}` (the same per-block "
                     "fullgraph capture by dynamo; the captured graph runs as it is, no kernels generated)")
    words += _changed("data.source", spec.data.source, "synthetic")
    if t.eval is not None:
        words.append("train.eval dropped: it reads the prepared data's `val/` split, which a rehearsal does not have")
    words += _changed("cache.policy", spec.cache.policy, "cold")
    words += _changed("distributed.debug", spec.distributed.debug, "INFO")
    if spec.volumes.model_dump(exclude_none=True) or spec.buckets:
        words.append("Volumes and bucket mounts dropped: they exist only on Modal")
    checkpoint = _checkpoint(spec, steps, words)
    update = {
        "target": "local", "buckets": {}, "checkpoint": checkpoint, "bench": _bench(spec, words),
        "resources": spec.resources.model_copy(update={"gpu": None, "exact": False, "nodes": 1, "ranks": geo.world_size}),
        "train": t.model_copy(update={"global_batch": geo.world_size, "micro_batch": 1, "seq_len": seq_len(spec),
                                      "steps": steps, "warmup_steps": warmup, "precision": "fp32", "eval": None}),
        "data": type(spec.data)(dtype=spec.data.dtype),
        "cache": type(spec.cache)(policy="cold"), "volumes": type(spec.volumes)(),
        "distributed": spec.distributed.model_copy(update={"debug": "INFO"}),
    }
    if model_dims(spec) is not None:  # the preset is applied by model_dims (it takes the run's seq_len)
        update |= {"preset": DIAGNOSTIC_PRESET, "model": type(spec.model)()}
    return spec.model_copy(update=update), words


def rehearsal_train(train: TrainPlan) -> TrainPlan:
    """The rehearsal's compile backend (the one thing a spec cannot say): Inductor's kernels are the GPU's business."""
    return train.model_copy(update={"compile_backend": REHEARSAL_COMPILE_BACKEND}) if train.compile else train


def _model_words(spec: Spec) -> list[str]:
    if model_dims(spec) is None:  # the user's own model is what a rehearsal of it must run: kept whole
        return [f"your model `{spec.model.entry}` kept as written (`model.args` unchanged)"]
    return _changed("model preset", spec.preset or "custom", DIAGNOSTIC_PRESET)


def _checkpoint(spec: Spec, steps: int, words: list[str]):
    """Checkpoints at an interval that fires within the rehearsal's steps (or none, as in the spec)."""
    c = spec.checkpoint
    if c.every is None:
        return c
    every = max(1, min(c.every, REHEARSAL_CHECKPOINT_EVERY, steps - 1))
    fired = ", ".join(str(s) for s in range(every, steps, every))  # the loop saves before the last step, not at it
    said = f"saved at step(s) {fired} to `checkpoints/` in the run dir" if fired else f"none fires in {steps} step(s)"
    words.append(f"checkpoint.every `{c.every}` -> `{every}`: {said}; checkpoint.resume `{c.resume}` kept")
    return c.model_copy(update={"every": every})


def _bench(spec: Spec, words: list[str]):
    """The bench lane's every op, on one small size for a couple of iterations."""
    if spec.bench is None:
        return None
    for key, small in REHEARSAL_BENCH.items():
        words += _changed(f"bench.{key}", getattr(spec.bench, key), small)
    return spec.bench.model_copy(update=REHEARSAL_BENCH)


def _changed(what: str, before: object, after: object) -> list[str]:
    if before == after:
        return []
    def shown(v: object) -> object:
        return ("on" if v else "off") if isinstance(v, bool) else v
    return [f"{what} `{shown(before)}` -> `{shown(after)}`"]
