"""Lint rules MS230-MS233: the validation loss (`train.eval`), what it reads and when it runs, and the
learning-rate schedule it is judged by.

`train.eval` reads the `val/` split of a folder made by `megaspec data prepare`; a run that cannot
have one would otherwise fail at launch (MS813), after its image is built and its GPUs are paid for.
"""

from __future__ import annotations

from pathlib import Path

from ...diagnostics import Severity
from .registry import RuleContext, rule


@rule("MS230", "eval-on-synthetic-data")
def eval_on_synthetic_data(ctx: RuleContext) -> None:
    """Checks that `train.eval` is set only with `data.source: shards`.

    Why: synthetic tokens have no held-out split, so there is nothing to compute a validation loss
    on; the launcher would refuse the run after the image is built. `megaspec data prepare` turns a
    text corpus into `train/` and `val/` shards.

    Example:
        train: {steps: 100, eval: {every: 20}}
        data: {source: synthetic}

    Use instead:
        train: {steps: 100, eval: {every: 20}}
        data: {source: shards, path: /vol/data/corpus}   # made by `megaspec data prepare`
    """
    if ctx.spec.train.eval is not None and ctx.spec.data.source == "synthetic":
        where = ("data", "source") if ctx.set(("data", "source")) else ("train", "eval")
        ctx.report(where, "`train.eval` needs a validation split, but `data.source` is `synthetic`: synthetic "
                   "tokens have none", hint="Run `megaspec data prepare CORPUS --tokenizer T --out DIR` and set "
                   "`data: {source: shards, path: DIR}`, or remove `train.eval`",
                   related=[ctx.related(("train", "eval"), "evaluation asked for here")])


@rule("MS231", "eval-without-val-split")
def eval_without_val_split(ctx: RuleContext) -> None:
    """Checks that `train.eval` reads a folder made by `megaspec data prepare`, when it is on this machine.

    Why: the validation loss is computed on the `val/` shards a prepared folder holds (its
    `manifest.json` lists them); a folder of plain shards has no validation split, and the launcher
    would refuse the run. A path that is not on this machine (a Volume) is checked at launch.

    Example:
        train: {eval: {every: 20}}
        data: {source: shards, path: /data/plain-shards}

    Use instead:
        train: {eval: {every: 20}}
        data: {source: shards, path: /data/prepared}   # megaspec data prepare ... --out /data/prepared
    """
    d = ctx.spec.data
    if ctx.spec.train.eval is None or d.source != "shards":
        return
    # the shard manifest's models are built only for a spec that asks for evaluation (lint must start fast)
    from megaspec.runtime.contract.shards import SHARDS_MANIFEST_FILE, prepared_folder

    field = "stage_from" if d.stage_from else "path"
    folder = getattr(d, field)
    if folder is None or not Path(folder).is_dir() or prepared_folder(folder) is not None:
        return
    ctx.report(("data", field), f"`data.{field}` `{folder}` has no validation split for `train.eval`: it is not a "
               "folder made by `megaspec data prepare` "
               f"(no `{SHARDS_MANIFEST_FILE}`)",
               hint="Prepare the corpus with `megaspec data prepare CORPUS --tokenizer T --out DIR` and point "
                    f"`data.{field}` at DIR, or remove `train.eval`",
               related=[ctx.related(("train", "eval"), "evaluation asked for here")])


@rule("MS232", "eval-every-over-steps", Severity.WARNING)
def eval_every_over_steps(ctx: RuleContext) -> None:
    """Checks that `train.eval.every` is not above `train.steps`.

    Why: the last step is always evaluated, so an interval longer than the run evaluates once, at
    the end: the validation curve has one point and says nothing about how the loss went.

    Example:
        train: {steps: 100, eval: {every: 500}}

    Use instead:
        train: {steps: 100, eval: {every: 20}}
    """
    t = ctx.spec.train
    if t.eval is not None and t.eval.every > t.steps:
        ctx.report(("train", "eval", "every"), f"`train.eval.every` `{t.eval.every}` is above `train.steps` "
                   f"`{t.steps}`: the validation loss is computed once, at the last step",
                   hint=f"Set `train.eval.every` to a fraction of `{t.steps}`, e.g. `{max(1, t.steps // 5)}`",
                   related=[ctx.related(("train", "steps"), "steps set here")])


@rule("MS233", "lr-warmup-covers-steps", Severity.WARNING)
def lr_warmup_covers_steps(ctx: RuleContext) -> None:
    """Checks that `train.lr_warmup_steps` is below `train.steps`.

    Why: the learning rate rises linearly for `lr_warmup_steps` and only then decays; with a warmup
    as long as the run, it reaches `train.lr` at the last step at the earliest and never decays, so
    the run does not train with the schedule its numbers claim. (`train.warmup_steps` is another knob: the steps left out of throughput.)

    Example:
        train: {steps: 100, lr_warmup_steps: 100}

    Use instead:
        train: {steps: 100, lr_warmup_steps: 10}
    """
    t = ctx.spec.train
    if t.lr_warmup_steps is not None and t.lr_warmup_steps >= t.steps:
        ctx.report(("train", "lr_warmup_steps"), f"`train.lr_warmup_steps` `{t.lr_warmup_steps}` is not below "
                   f"`train.steps` `{t.steps}`: the whole run warms the learning rate up and it never decays",
                   hint=f"Set `train.lr_warmup_steps` to a fraction of `{t.steps}`, e.g. `{max(1, t.steps // 10)}`, "
                        "or leave it out for `min(100, steps // 10)`",
                   related=[ctx.related(("train", "steps"), "steps set here")])
