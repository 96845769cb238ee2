"""Lint rules MS601-MS602, tracking: what a `tracking:` block needs to work on Modal.

A tracker runs inside the Modal image, with the image's packages and the function's secrets. A
missing one does not stop the run (a tracker never does): the run trains, and the user learns
after paying for it that no event file or W&B run exists. Both are caught here, with a fix.
"""

from __future__ import annotations

from collections.abc import Callable

from ...diagnostics import YamlPath
from ...spec.field_types import package_name
from ...spec.source_map import editor_lines
from .registry import RuleContext, rule

# The package each tracker imports in the image, pinned to the version megaspec is tested with.
TRACKER_PACKAGES = {"tensorboard": "tensorboard==2.21.0", "wandb": "wandb==0.21.0"}


def append_fix(ctx: RuleContext, path: YamlPath, count: int, item: str) -> tuple[YamlPath, Callable[[str], str]] | None:
    """(`fix_at`, transform) that appends `item` to the list written at `path`, as a flow `[...]` on one
    line or a block of `- ` lines; None where it is not written in either form."""
    if not ctx.set(path):
        return None
    text = ctx.smap.text_at(ctx.smap.value_span(path)) or ""
    if text.startswith("[") and text.endswith("]"):
        return path, lambda t: t[:-1].rstrip() + (", " if t[1:-1].strip() else "") + item + "]"
    last = (*path, count - 1)
    span = ctx.smap.value_span(last) if count else None
    if span is None:
        return None
    line = editor_lines(ctx.smap.texts.get(span.path, ""))[span.line - 1]
    indent, dash, _ = line.partition("-")
    if not dash or indent.strip():
        return None
    return last, lambda t: f"{t}\n{indent}- {item}"


@rule("MS601", "tracker-package-not-in-image")
def tracker_package_not_in_image(ctx: RuleContext) -> None:
    """Checks that a Modal run's image has the package of each tracker `tracking:` turns on.

    Why: the tracker runs inside the Modal image: without `tensorboard` (for `tracking.tensorboard`)
    or `wandb` (for `tracking.wandb`) in `image.packages`, the run trains but writes no event file
    and no W&B run, and that is found out after the GPUs were paid for. `megaspec lint --fix` adds
    the package, pinned to the version megaspec is tested with.

    Example:
        target: modal
        image: {packages: [torch==2.8.0]}
        tracking: {wandb: {project: sweeps}}

    Use instead:
        image: {packages: [torch==2.8.0, wandb==0.21.0]}
    """
    spec, t = ctx.spec, ctx.spec.tracking
    if t is None or spec.target != "modal":
        return
    listed = {package_name(p) for p in spec.image.packages}
    for tracker, on in (("tensorboard", t.tensorboard), ("wandb", t.wandb is not None)):
        if not on or tracker in listed:
            continue
        pin = TRACKER_PACKAGES[tracker]
        where = append_fix(ctx, ("image", "packages"), len(spec.image.packages), pin)
        ctx.report(("tracking", tracker), f"`tracking.{tracker}` runs in the Modal image, whose `image.packages` "
                   f"has no `{tracker}`", key=True, hint=f"Add `{pin}` to `image.packages`",
                   related=[ctx.related(("image", "packages"), "the image's packages")],
                   fix=(f"Add `{pin}` to `image.packages`", where[1]) if where else None,
                   fix_at=where[0] if where else None)


@rule("MS602", "wandb-secret-not-listed")
def wandb_secret_not_listed(ctx: RuleContext) -> None:
    """Checks that a Modal run that logs to W&B lists the Modal Secret holding its API key.

    Why: on Modal a W&B run logs online, with the `WANDB_API_KEY` of the Modal Secret named by
    `tracking.wandb.secret` (default `wandb`); the function gets only the Secrets `secrets:` lists.
    Without it the run trains and logs nothing. The key itself never goes in the spec: a literal
    key anywhere is MS405.

    Example:
        target: modal
        tracking: {wandb: {project: sweeps}}

    Use instead:
        secrets: [wandb]   # modal secret create wandb WANDB_API_KEY=...
        tracking: {wandb: {project: sweeps}}
    """
    spec, t = ctx.spec, ctx.spec.tracking
    if t is None or t.wandb is None or spec.target != "modal" or t.wandb.secret in spec.secrets:
        return
    secret = t.wandb.secret
    where = append_fix(ctx, ("secrets",), len(spec.secrets), secret)
    at = ("tracking", "wandb", "secret") if ctx.set(("tracking", "wandb", "secret")) else ("tracking", "wandb")
    ctx.report(at, f"`tracking.wandb` logs from Modal with the key in the Modal Secret `{secret}`, which "
               "`secrets:` does not list", key=at[-1] == "wandb",
               hint=f"List `{secret}` in `secrets:` (a Modal Secret holding `WANDB_API_KEY`: "
                    f"`modal secret create {secret} WANDB_API_KEY=...`)",
               fix=(f"List `{secret}` in `secrets:`", where[1]) if where else None, fix_at=where[0] if where else None)
