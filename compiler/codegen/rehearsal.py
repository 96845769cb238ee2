"""Rehearsal: a GPU spec lowered for `--target local` becomes the same run on CPU ranks.

The world size and batch geometry are kept (`geometry()` of the GPU spec); everything that
exists only on Modal or only makes sense on GPUs is substituted, and every substitution is
written down for `run.substitutions` in the Plan, so a rehearsal is never mistaken for the run.
"""

from __future__ import annotations

from megaspec.runtime.contract.presets import DIAGNOSTIC_PRESET, PRESETS

from ..spec.model import Spec
from ..spec.model_dims import model_dims, seq_len
from ..spec.topology import geometry, precision

REHEARSAL_EXTRA_STEPS = 5



def rehearse(spec: Spec) -> tuple[Spec, list[str]]:
    """A GPU spec rewritten for CPU ranks here: same world size and batch geometry, tiny everything else."""
    geo = geometry(spec)
    world = geo.world_size
    tiny = PRESETS[DIAGNOSTIC_PRESET]
    t = spec.train
    dims = model_dims(spec)
    length = seq_len(spec)  # the diagnostic preset takes any length
    steps = min(t.steps, t.warmup_steps + REHEARSAL_EXTRA_STEPS)
    words = [f"GPU `{spec.resources.gpu.primary.text}` x {geo.nodes} node(s) -> {world} CPU ranks (gloo)"]
    if dims is None:  # the user's own model is what a rehearsal of it must run: kept whole
        words.append(f"your model `{spec.model.entry}` kept as written (`model.args` unchanged)")
    else:
        words += _changed("model preset", spec.preset or "custom", DIAGNOSTIC_PRESET)
    words += _changed("train.steps", t.steps, steps)
    words += _changed("train.precision", precision(spec, geo), "fp32")
    words += _changed("train.compile", t.compile, False)
    words += _changed("data.source", spec.data.source, "synthetic")
    words += _changed("cache.policy", spec.cache.policy, "cold")
    words += _changed("distributed.debug", spec.distributed.debug, "INFO")
    if spec.volumes.model_dump(exclude_none=True) or spec.buckets:
        words.append("Volumes and bucket mounts dropped: they exist only on Modal")
    if spec.checkpoint.every is not None:
        words.append("checkpoints go to `checkpoints/` in the run dir")
    update = {
        "target": "local", "buckets": {},
        "resources": spec.resources.model_copy(update={"gpu": None, "exact": False, "nodes": 1, "ranks": world}),
        "train": t.model_copy(update={"global_batch": geo.global_batch, "seq_len": length,
                                      "steps": steps, "precision": "fp32", "compile": False}),
        "data": type(spec.data)(dtype=spec.data.dtype),
        "cache": type(spec.cache)(policy="cold"), "volumes": type(spec.volumes)(),
        "distributed": spec.distributed.model_copy(update={"debug": "INFO"}),
    }
    if dims is not None:
        update |= {"preset": DIAGNOSTIC_PRESET,
                   "model": type(spec.model)(max_seq_len=length if length > tiny.max_seq_len else None)}
    return spec.model_copy(update=update), words


def _changed(what: str, before: object, after: object) -> list[str]:
    if before == after:
        return []
    def shown(v: object) -> object:
        return ("on" if v else "off") if isinstance(v, bool) else v
    return [f"{what} `{shown(before)}` -> `{shown(after)}`"]
