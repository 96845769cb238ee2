"""Lint rules MS2xx, training semantics: batch geometry, model shape, steps, resume and lanes.

Each is a mistake that otherwise surfaces after the GPUs are paid for: a rank with no work, a
measured loop with no steps, a retry that starts over from step 0. Distributed launch hazards
(compile, debug, timeouts) live in `distributed.py`.
"""

from __future__ import annotations

from ...diagnostics import Severity
from ...spec.mounts import is_under
from ...spec.topology import Geometry, geometry
from .paths import dim_path, model_dim, ranks_path
from .registry import RuleContext, rule


def _valid_batches(global_batch: int, unit: int) -> str:
    low = max(unit, global_batch // unit * unit)
    return ", ".join(f"`{b}`" for b in sorted({low, low + unit}))


def _written_batch(ctx: RuleContext) -> Geometry | None:
    """The geometry of a spec that writes `train.global_batch` (MS201 and MS202 judge only a written one)."""
    return geometry(ctx.spec) if ctx.spec.train.global_batch is not None else None


def _report_batch(ctx: RuleContext, geo: Geometry, problem: str, hint: str) -> None:
    """Reports at `train.global_batch`, with the place that sets the number of ranks; `{split}` in
    `problem` is the micro-batch x ranks product spelled out, `{unit}` (here and in `hint`) its value."""
    unit = geo.sequences_per_micro_step
    split = f"`micro_batch` `{ctx.spec.train.micro_batch}` x `{geo.world_size}` ranks"
    ctx.report(("train", "global_batch"),
               f"`train.global_batch` `{ctx.spec.train.global_batch}` " + problem.format(split=split, unit=unit),
               hint=hint.format(unit=unit), related=[ctx.related(ranks_path(ctx.spec), "number of ranks set here")])


@rule("MS201", "batch-not-divisible")
def batch_not_divisible(ctx: RuleContext) -> None:
    """Checks that `train.global_batch` splits evenly over micro-batches and ranks.

    Why: every rank must run the same number of micro-batches per step. An uneven split leaves
    some ranks with extra work, and a rank whose shard differs can compile differently and stall
    the others at the first collective. When a multi-rank run hangs, restoring an even split is
    often the fastest way to rule the batch out.

    Example:
        resources: {gpu: "H100:8"}
        train: {global_batch: 12, micro_batch: 1}

    Use instead:
        train: {global_batch: 16, micro_batch: 1}
    """
    geo = _written_batch(ctx)
    if geo is not None and geo.grad_accum >= 1 and not geo.divisible:
        valid = _valid_batches(ctx.spec.train.global_batch, geo.sequences_per_micro_step)
        _report_batch(ctx, geo, "is not a multiple of {split} (`{unit}`)", "Use a multiple of `{unit}`, e.g. " + valid)


@rule("MS202", "rank-without-work")
def rank_without_work(ctx: RuleContext) -> None:
    """Checks that every rank gets at least one micro-batch per step.

    Why: with fewer sequences than `micro_batch` x ranks, some ranks get zero sequences. An empty
    shard makes that rank trace a different graph and leaves the others waiting forever at the
    first collective, which looks like an NCCL hang.

    Example:
        resources: {gpu: "H200:8"}
        train: {global_batch: 4}

    Use instead:
        train: {global_batch: 8}
    """
    geo = _written_batch(ctx)
    if geo is not None and geo.grad_accum < 1:
        _report_batch(ctx, geo, "leaves ranks without work: {split} needs at least `{unit}`",
                      "Set `train.global_batch` to a multiple of `{unit}`, or use fewer ranks")


@rule("MS203", "warmup-covers-steps")
def warmup_covers_steps(ctx: RuleContext) -> None:
    """Checks that `train.warmup_steps` leaves at least one measured step.

    Why: warmup steps (and step 0) are excluded from the measured loop. With `warmup_steps` at or
    above `steps` the run trains, pays for the GPUs, and reports no throughput at all.

    Example:
        train: {steps: 20, warmup_steps: 20}

    Use instead:
        train: {steps: 20, warmup_steps: 5}
    """
    train = ctx.spec.train
    if train.warmup_steps >= train.steps:
        where = ("train", "warmup_steps") if ctx.set(("train", "warmup_steps")) else ("train", "steps")
        ctx.report(where,
                   f"`train.warmup_steps` `{train.warmup_steps}` is not below `train.steps` `{train.steps}`: "
                   "no step is measured",
                   hint=f"Set `train.warmup_steps` below `{train.steps}`, or raise `train.steps`",
                   related=[ctx.related(("train", "steps"), "steps set here")])


@rule("MS204", "heads-not-divisor")
def heads_not_divisor(ctx: RuleContext) -> None:
    """Checks that attention heads divide the model width, and KV heads divide the heads.

    Why: each head gets `d_model / n_heads` channels and grouped-query attention shares each KV
    head among `n_heads / n_kv_heads` query heads; a remainder fails when the model is built,
    inside the container. Your own model (`model.entry`) is not judged: its heads are in its code.

    Example:
        preset: dense-1b
        model: {n_kv_heads: 6}

    Use instead:
        model: {n_kv_heads: 8}
    """
    d_model, n_heads, n_kv = (model_dim(ctx.spec, n) for n in ("d_model", "n_heads", "n_kv_heads"))
    if d_model and n_heads and d_model % n_heads:
        where = dim_path(ctx.set, "n_heads") if ctx.set(("model", "n_heads")) else dim_path(ctx.set, "d_model")
        ctx.report(where, f"`model.n_heads` `{n_heads}` does not divide `model.d_model` `{d_model}`",
                   hint=f"Use a head count that divides `{d_model}`")
    if n_heads and n_kv and n_heads % n_kv:
        where = dim_path(ctx.set, "n_kv_heads") if ctx.set(("model", "n_kv_heads")) else dim_path(ctx.set, "n_heads")
        divisors = [d for d in range(1, n_heads + 1) if n_heads % d == 0]
        ctx.report(where, f"`model.n_kv_heads` `{n_kv}` does not divide `model.n_heads` `{n_heads}`",
                   hint=f"Use one of {', '.join(f'`{d}`' for d in divisors[-8:])}")


@rule("MS205", "seq-len-over-model-max")
def seq_len_over_model_max(ctx: RuleContext) -> None:
    """Checks that `train.seq_len` fits the model's `max_seq_len`.

    Why: rotary position tables are built for `max_seq_len`; longer sequences fail at the first
    forward, after the image build and the GPU wait. Your own model (`model.entry`) is not judged
    here: its lengths are in its code; a forward that fails at `train.seq_len` is MS814 before any
    step.

    Example:
        preset: dense-1b
        train: {seq_len: 8192}

    Use instead:
        train: {seq_len: 4096}
    """
    seq_len, max_len = ctx.spec.train.seq_len, model_dim(ctx.spec, "max_seq_len")
    if seq_len is not None and max_len is not None and seq_len > max_len:
        ctx.report(("train", "seq_len"), f"`train.seq_len` `{seq_len}` exceeds the model's `max_seq_len` `{max_len}`",
                   hint=f"Set `train.seq_len` to at most `{max_len}`, or raise `model.max_seq_len`",
                   related=[ctx.related(dim_path(ctx.set, "max_seq_len"), "model length set here")])


@rule("MS211", "bf16-on-cpu", Severity.WARNING)
def bf16_on_cpu(ctx: RuleContext) -> None:
    """Checks that a CPU-only spec does not ask for bf16.

    Why: CPUs without bf16 matrix units emulate it; a bf16 run on CPU was about 12x slower than
    fp32 and measures the emulation, not the model.

    Example:
        resources: {ranks: 2}
        train: {precision: bf16}

    Use instead:
        train: {precision: fp32}
    """
    if ctx.spec.resources.gpu is None and ctx.set(("train", "precision")) and ctx.spec.train.precision == "bf16":
        ctx.report(("train", "precision"), "`train.precision` `bf16` on a CPU-only spec (no `resources.gpu`)",
                   hint="Set `train.precision: fp32` for CPU runs, or set `resources.gpu`")


@rule("MS212", "retries-without-resume", Severity.WARNING)
def retries_without_resume(ctx: RuleContext) -> None:
    """Checks that retried runs can resume from a checkpoint.

    Why: Modal retries an attempt from the start (preemption, a crashed container). Without
    `checkpoint.every` and `resume: auto`, every retry trains again from step 0 and pays again.

    Example:
        resources: {retries: 2}

    Use instead:
        resources: {retries: 2}
        checkpoint: {every: 100, resume: auto}
    """
    retries, ckpt = ctx.spec.resources.retries, ctx.spec.checkpoint
    if retries > 0 and (ckpt.every is None or ckpt.resume == "never"):
        why = "`checkpoint.every` is unset" if ckpt.every is None else "`checkpoint.resume` is `never`"
        ctx.report(("resources", "retries"), f"`resources.retries` `{retries}` but {why}: each retry restarts "
                   "from step 0", hint="Set `checkpoint.every` and `checkpoint.resume: auto`, or remove the retries",
                   related=[ctx.related(("checkpoint", "resume"), "resume set here")
                            if ctx.set(("checkpoint", "resume")) else None])


@rule("MS213", "checkpoint-without-volume")
def checkpoint_without_volume(ctx: RuleContext) -> None:
    """Checks that checkpoints on Modal are written to a Volume.

    Why: a container's disk disappears with the container. Checkpoints written there cannot be
    resumed by a retry and are gone when the run ends.

    Example:
        target: modal
        checkpoint: {every: 100}

    Use instead:
        volumes: {checkpoints: {name: ms-ckpt, mount: /vol/ckpt}}
        checkpoint: {every: 100}
    """
    spec = ctx.spec
    if spec.checkpoint.every is not None and spec.target == "modal" and spec.volumes.checkpoints is None:
        ctx.report(("checkpoint", "every"), "`checkpoint.every` is set but there is no `volumes.checkpoints`: "
                   "checkpoints would be lost with the container",
                   hint="Add `volumes.checkpoints: {name: ..., mount: /vol/ckpt}`")


@rule("MS214", "cache-seed-missing")
def cache_seed_missing(ctx: RuleContext) -> None:
    """Checks that a Modal spec with `cache.policy: require-seed` names a seed on the cache Volume.

    Why: the seeded compile cache is what keeps ranks from compiling at different speeds and
    hanging at the first collective. A seed that is not on the cache Volume does not exist in the
    container, so the run starts cold after all. `megaspec cache seed SPEC` makes the seed.

    Example:
        cache: {policy: require-seed}

    Use instead:
        volumes: {cache: {name: ms-compile-cache, mount: /vol/cache}}
        cache: {policy: require-seed, seed: /vol/cache/seed}
    """
    cache, vol = ctx.spec.cache, ctx.spec.volumes.cache
    if cache.policy != "require-seed" or ctx.spec.target == "local":  # a local run reads the seed in place
        return
    if vol is None:
        ctx.report(("cache", "policy"), "`cache.policy` `require-seed` needs a `volumes.cache` to hold the seed",
                   hint="Add `volumes.cache: {name: ..., mount: /vol/cache}` and set `cache.seed` under it")
    elif cache.seed is None:
        ctx.report(("cache", "policy"), "`cache.policy` `require-seed` without a `cache.seed`",
                   hint=f"Set `cache.seed` to the warmed cache's path under `{vol.mount}`")
    elif not is_under(cache.seed, vol.mount):
        ctx.report(("cache", "seed"), f"`cache.seed` `{cache.seed}` is not under the cache Volume mount "
                   f"`{vol.mount}`", hint=f"Move the seed under `{vol.mount}`",
                   related=[ctx.related(("volumes", "cache", "mount"), "cache Volume mounted here")])


@rule("MS215", "validate-without-criteria", Severity.WARNING)
def validate_without_criteria(ctx: RuleContext) -> None:
    """Checks that a `validate` run has an acceptance criterion beyond finite losses.

    Why: the validate lane records a verdict. Without `max_final_loss` or a `reference_receipt`
    it only checks that the loss is finite, so a diverged-but-finite run still passes.

    Example:
        lane: validate

    Use instead:
        lane: validate
        validate: {max_final_loss: 4.0}
    """
    val = ctx.spec.validate_
    if ctx.spec.lane == "validate" and (val is None or (val.max_final_loss is None and val.reference_receipt is None)):
        where = ("validate",) if val is not None else ("lane",)
        ctx.report(where, "the `validate` lane has no `max_final_loss` or `reference_receipt`: only finite "
                   "losses are checked", key=val is not None,
                   hint="Set `validate.max_final_loss` or `validate.reference_receipt`")


@rule("MS216", "lane-section-mismatch", Severity.WARNING)
def lane_section_mismatch(ctx: RuleContext) -> None:
    """Checks that a `bench:` or `validate:` section matches the spec's lane, and that a bench does not track.

    Why: each lane reads only its own section; a `bench:` section on a `train` spec is silently
    ignored, so the run does not do what the spec appears to say. Likewise `tracking:` mirrors
    training steps, and a `bench` run has none: no event file and no W&B run would appear.

    Example:
        lane: train
        bench: {ops: [all_reduce]}

    Use instead:
        lane: bench
        bench: {ops: [all_reduce]}
    """
    lane = ctx.spec.lane
    for section in ("bench", "validate"):
        if ctx.set((section,)) and lane != section:
            ctx.report((section,), f"`{section}:` is ignored on the `{lane}` lane", key=True,
                       hint=f"Set `lane: {section}`, or remove the `{section}:` section",
                       related=[ctx.related(("lane",), "lane set here")])
    if ctx.set(("tracking",)) and lane == "bench":
        ctx.report(("tracking",), "`tracking:` is ignored on the `bench` lane, which runs no training steps",
                   key=True, hint="Remove the `tracking:` section: the bench results are in the receipt",
                   related=[ctx.related(("lane",), "lane set here")])


@rule("MS217", "resume-without-checkpoints", Severity.WARNING)
def resume_without_checkpoints(ctx: RuleContext) -> None:
    """Checks that `checkpoint.resume: auto` has checkpoints to resume from.

    Why: a run resumes only from a complete checkpoint written before it failed. With
    `checkpoint.every` unset nothing is written, and with `checkpoint.every` at or above
    `train.steps` the only save would be the last step, which is never saved; either way a
    failed run starts again from step 0. (A local run resumes in its run directory with
    `megaspec apply SPEC --resume runs/<run-id>`; a Modal run from its checkpoints Volume.)

    Example:
        train: {steps: 300}
        checkpoint: {every: 500, resume: auto}

    Use instead:
        train: {steps: 300}
        checkpoint: {every: 100, resume: auto}
    """
    ckpt, steps = ctx.spec.checkpoint, ctx.spec.train.steps
    if ckpt.resume != "auto":
        return
    if ckpt.every is None and ctx.set(("checkpoint", "resume")) and ctx.spec.resources.retries == 0:
        ctx.report(("checkpoint", "resume"), "`checkpoint.resume` `auto` but `checkpoint.every` is unset: no "
                   "checkpoint is written, so a failed run starts again from step 0",
                   hint="Set `checkpoint.every` below `train.steps`, or `checkpoint.resume: never`")
    elif ckpt.every is not None and ckpt.every >= steps:
        ctx.report(("checkpoint", "every"), f"`checkpoint.every` `{ckpt.every}` is not below `train.steps` "
                   f"`{steps}`: no checkpoint is written before the last step, so there is nothing to resume",
                   hint=f"Set `checkpoint.every` below `{steps}`, e.g. `{max(1, steps // 3)}`",
                   related=[ctx.related(("train", "steps"), "steps set here")])
