"""Lint rules MS3xx, resources on Modal: GPU types and counts, upgrades, clusters, limits.

The Modal client accepts any `TYPE:COUNT` string; the server rejects it later, or worse, runs it
on different hardware than the receipt claims. These rules decide it from the spec, offline.
"""

from __future__ import annotations

import re

from megaspec.runtime.contract.gpus import GPUS

from ...codes import GPU_COUNT_OVER_NODE_LIMIT, UNKNOWN_GPU_TYPE
from ...diagnostics import Severity, YamlPath, listing
from ...spec.gpu import GpuRequest, modal_type
from .registry import RuleContext, rule, stage_rule

MAX_TIMEOUT_S = 24 * 3600
CUDA13_GPU_TYPES = {"B300", "B200+"}  # B200+ may land on a B300
_CUDA_TAG = re.compile(r"cuda[:-]?(\d+)\.(\d+)", re.IGNORECASE)


def gpu_entries(ctx: RuleContext) -> list[tuple[YamlPath, GpuRequest]]:
    """(YAML path, request) for each GPU entry, fallbacks included; none on a CPU-only spec."""
    gpu = ctx.spec.resources.gpu
    return gpu.entries() if gpu is not None else []


# MS301 and MS302 are decided while the spec is validated (`spec/gpu.py` parses `resources.gpu`
# once, into the typed value every rule reads); only their docs are registered here.
stage_rule(UNKNOWN_GPU_TYPE.code, UNKNOWN_GPU_TYPE.name, """Checks that each `resources.gpu` entry names a Modal GPU type.

    Why: the Modal client accepts any name (`FOO:99` parses); the server rejects it only at
    launch. Types are case-insensitive (MS312 asks for the canonical spelling), an empty entry
    is not a CPU run, and `!` (no automatic upgrade) exists only for `H100!`.

    Example:
        resources: {gpu: "H100-SXM:8"}

    Use instead:
        resources: {gpu: "H100!:8"}
    """)
stage_rule(GPU_COUNT_OVER_NODE_LIMIT.code, GPU_COUNT_OVER_NODE_LIMIT.name,
           """Checks that each GPU count is a whole number within the per-container limit.

    Why: all GPUs of one container sit on one machine: at most 8 (4 for `A10`). The client
    accepts `H100:0` and `FOO:99`; the server refuses them after the image is built.

    Example:
        resources: {gpu: "H200:16"}

    Use instead:
        resources: {gpu: "H200:8", nodes: 2}
    """)


@rule("MS312", "gpu-type-not-canonical", Severity.WARNING)
def gpu_type_not_canonical(ctx: RuleContext) -> None:
    """Checks that each `resources.gpu` entry is spelled the way Modal and the receipts spell it.

    Why: megaspec reads GPU types case-insensitively, but the spec is what people grep and diff:
    `h100` and `H100` in two specs of one comparison look like different hardware, and a fix that
    writes `h100!` reads like a different type again. The canonical spelling is upper case.

    Example:
        resources: {gpu: "h100!:8"}

    Use instead:
        resources: {gpu: "H100!:8"}
    """
    for path, req in gpu_entries(ctx):
        written = req.text.strip().partition(":")[0]
        canonical = req.canonical.partition(":")[0]
        if written != canonical:
            ctx.report(path, f"GPU type `{written}` is spelled `{canonical}` by Modal and in receipts",
                       hint=f"Write `{canonical}`", fix=(f"Write `{canonical}`", _respell(written, canonical)))


def _respell(written: str, canonical: str):
    """The fix: the written type replaced by its canonical spelling in the text as written (quotes kept)."""
    return lambda source: source.replace(written, canonical, 1) if written in source else None


@rule("MS303", "h100-not-exact", Severity.WARNING)
def h100_not_exact(ctx: RuleContext) -> None:
    """Checks that an `H100` request refuses Modal's automatic upgrade to an H200.

    Why: `gpu: H100` may run on an H200 (billed as an H100). The receipt then differs from the
    request, throughput is not comparable, and Inductor caches (keyed by device) are missed.
    Cost: megaspec prices an upgraded request as Modal bills it, at the requested type (the H100
    rate for an H200 that served `H100`; the same for `A100` on an 80 GB card and `B200+` on a
    B300): Modal docs, guide/gpu, "Automatic upgrades". Prices: Modal's per-second list prices
    (modal.com/pricing) as transcribed by snapshots of 2026-05-07 (techbytes), 2026-05-25
    (api-evangelist/modal-com) and 2026-06-27 (beam.cloud), GPUs + CPU cores + memory, dated in
    every estimate and receipt; `megaspec plan` warns when that date is over 90 days old.

    Example:
        resources: {gpu: "H100:8"}

    Use instead:
        resources: {gpu: "H100:8", exact: true}
    """
    if ctx.spec.resources.exact:
        return
    for path, req in gpu_entries(ctx):
        if req.type == "H100" and not req.exact:
            exact = modal_type(req.type, exact=True)
            ctx.report(path, f"`{req.text}` may be placed on an H200; the receipt would differ from the request",
                       hint=f"Set `resources.exact: true` (or write `{exact}`) to refuse the upgrade",
                       fix=(f"Write `{exact}`", _respell(req.text.strip().partition(":")[0], exact)))


@rule("MS304", "timeout-over-24h")
def timeout_over_24h(ctx: RuleContext) -> None:
    """Checks that `resources.timeout` is at most 24 hours.

    Why: Modal limits one attempt to 24 hours; the client accepts more and the server rejects the
    function at launch. Longer training resumes from checkpoints across retries.

    Example:
        resources: {timeout: 36h}

    Use instead:
        resources: {timeout: 24h, retries: 2}
        checkpoint: {every: 500}
    """
    timeout_s = ctx.spec.resources.timeout
    if timeout_s > MAX_TIMEOUT_S:
        ctx.report(("resources", "timeout"), f"`resources.timeout` is `{timeout_s / 3600:g}h`; Modal allows at "
                   "most `24h` per attempt",
                   hint="Set `resources.timeout: 24h` and resume across retries with `checkpoint.every`")


@rule("MS305", "multi-node-partial-node")
def multi_node_partial_node(ctx: RuleContext) -> None:
    """Checks that a multi-node run uses whole nodes of a clustered GPU type.

    Why: `modal.clustered` requires each container to request all GPUs of its node (`H100:8`,
    not `H100:4`), supports only H100, H200, B200 and B300, and has no CPU-only clusters.

    Example:
        resources: {gpu: "H200:4", nodes: 2}

    Use instead:
        resources: {gpu: "H200:8", nodes: 2}
    """
    nodes = ctx.spec.resources.nodes
    if nodes < 2:
        return
    related = [ctx.related(("resources", "nodes"), "nodes set here")]
    entries = gpu_entries(ctx)
    if not entries:
        ctx.report(("resources", "nodes"), f"`resources.nodes` `{nodes}` without `resources.gpu`: CPU-only "
                   "clusters are not supported", hint="Set `resources.gpu: H200:8`, or use `resources.nodes: 1`")
    for path, req in entries:
        if not GPUS[req.type].clustered:
            clustered = [gpu for gpu, facts in GPUS.items() if facts.clustered]
            ctx.report(path, f"`{req.type}` cannot run multi-node; clusters support {listing(clustered)}",
                       hint="Use a clustered GPU type, or set `resources.nodes: 1`", related=related)
        elif req.count < 8:
            ctx.report(path, f"`{req.text}` requests part of a node; multi-node containers need all `8` GPUs",
                       hint=f"Write `{req.type}:8`, or set `resources.nodes: 1`", related=related)


@rule("MS306", "gpu-fallback-changes-world-size")
def gpu_fallback_changes_world_size(ctx: RuleContext) -> None:
    """Checks that all GPU fallbacks request the same count.

    Why: Modal tries the list in order. A fallback with a different count changes the world size,
    the per-rank batch and the comparison class, silently, depending on capacity that day.

    Example:
        resources: {gpu: ["H200:8", "H100!:4"]}

    Use instead:
        resources: {gpu: ["H200:8", "H100!:8"]}
    """
    entries = gpu_entries(ctx)
    if len(entries) < 2:
        return
    first_path, first = entries[0]
    for path, req in entries[1:]:
        if req.count != first.count:
            ctx.report(path, f"fallback `{req.text}` runs `{req.count}` GPUs but `{first.text}` runs `{first.count}`: "
                       "the world size would depend on capacity", hint=f"Request `{first.count}` GPUs in every "
                       "fallback", related=[ctx.related(first_path, "first choice set here")])


@rule("MS313", "seed-with-gpu-fallback", Severity.WARNING)
def seed_with_gpu_fallback(ctx: RuleContext) -> None:
    """Checks that a Modal spec with `cache.policy: require-seed` runs on one kind of GPU.

    Why: `megaspec cache seed SPEC` compiles the seed on one GPU of the first type asked for, and
    a run refuses a seed built on another device (MS812). With a fallback of another type, or a
    type that more than one card serves (`B200+`: a B200 or a B300), a run placed on the other
    card stops before training, depending on capacity that day.

    Example:
        resources: {gpu: ["H200:8", "H100!:8"]}
        cache: {policy: require-seed, seed: /vol/cache/seed}

    Use instead:
        resources: {gpu: "H200:8"}
        cache: {policy: require-seed, seed: /vol/cache/seed}
    """
    if ctx.spec.cache.policy != "require-seed" or ctx.spec.target == "local":
        return
    related = [ctx.related(("cache", "policy"), "require-seed set here")]
    entries = gpu_entries(ctx)
    for path, req in entries[:1]:
        if len(cards := GPUS[req.type].served_as) > 1:
            either = " or ".join(f"`{card}`" for card in cards)
            ctx.report(path, f"`{req.type}` is served by {either}: the seed is compiled on one of them and a run "
                       "placed on the other refuses it (MS812)", hint=f"Ask for {either} by name", related=related)
    for path, req in entries[1:]:
        if req.type != entries[0][1].type:
            ctx.report(path, f"fallback `{req.text}` is not the `{entries[0][1].type}` the seed is compiled on: a run "
                       "placed on it refuses the seed (MS812)", hint=f"Ask for `{entries[0][1].type}` only, or set "
                       "`cache.policy: warm`", related=related)


@rule("MS307", "ranks-with-gpu")
def ranks_with_gpu(ctx: RuleContext) -> None:
    """Checks that `resources.ranks` is used only without `resources.gpu`.

    Why: on GPU specs the world size is the GPU count; `ranks` is the process count of CPU-only
    specs. Both together leave it unclear which one the run uses.

    Example:
        resources: {gpu: "H200:8", ranks: 4}

    Use instead:
        resources: {gpu: "H200:8"}
    """
    if ctx.spec.resources.ranks is not None and ctx.spec.resources.gpu is not None:
        ctx.report(("resources", "ranks"), "`resources.ranks` is set together with `resources.gpu`; GPU specs run "
                   "one rank per GPU", hint="Remove `resources.ranks` (it is for CPU-only specs)",
                   related=[ctx.related(("resources", "gpu"), "GPUs set here")])


@rule("MS308", "b300-needs-cuda13", Severity.WARNING)
def b300_needs_cuda13(ctx: RuleContext) -> None:
    """Checks that a B300 (or `B200+`) run uses an image with CUDA 13.1 or newer.

    Why: B300s need CUDA 13.1+, and `B200+` may be placed on a B300. An older CUDA base image
    fails at the first kernel, after the GPU has been allocated.

    Example:
        resources: {gpu: "B300:8"}
        image: {base: nvidia/cuda:12.8.1-devel-ubuntu22.04}

    Use instead:
        image: {base: nvidia/cuda:13.1.0-devel-ubuntu24.04}
    """
    base = ctx.spec.image.base
    match = _CUDA_TAG.search(base or "")
    types = [(p, r.type) for p, r in gpu_entries(ctx) if r.type in CUDA13_GPU_TYPES]
    if not match or not types or (int(match[1]), int(match[2])) >= (13, 1):
        return
    ctx.report(("image", "base"), f"`image.base` has CUDA `{match[1]}.{match[2]}`; `{types[0][1]}` needs "
               "CUDA `13.1` or newer", hint="Use a CUDA 13.1+ base image, e.g. `nvidia/cuda:13.1.0-devel-ubuntu24.04`",
               related=[ctx.related(types[0][0], "GPU type set here")])


@rule("MS309", "exact-without-effect", Severity.INFO)
def exact_without_effect(ctx: RuleContext) -> None:
    """Checks that `resources.exact: true` applies to an `H100` request.

    Why: only H100s are upgraded automatically (to H200s); `exact` has no effect on other types
    and suggests a guarantee the run does not have.

    Example:
        resources: {gpu: "H200:8", exact: true}

    Use instead:
        resources: {gpu: "H200:8"}
    """
    if not ctx.spec.resources.exact:
        return
    if not any(r.type == "H100" for _, r in gpu_entries(ctx)):
        ctx.report(("resources", "exact"), "`resources.exact` has no effect without an `H100` request",
                   hint="Remove `resources.exact`; only `H100` is upgraded automatically")


@rule("MS310", "cpu-spec-on-modal", Severity.WARNING)
def cpu_spec_on_modal(ctx: RuleContext) -> None:
    """Checks that a `train` or `bench` spec on Modal requests a GPU.

    Why: a CPU-only training run on Modal pays for a container and measures nothing worth
    comparing; it is almost always a spec meant for `target: local` or a missing `gpu`.

    Example:
        target: modal
        resources: {ranks: 2}

    Use instead:
        target: local
        resources: {ranks: 2}
    """
    spec = ctx.spec
    if spec.target != "modal" or spec.lane not in ("train", "bench") or spec.resources.gpu is not None:
        return
    where = next((p for p in (("target",), ("resources",)) if ctx.set(p)), ("name",))
    ctx.report(where, f"`{spec.lane}` spec targets Modal without `resources.gpu`: it would train on CPU",
               key=where == ("resources",),
               hint="Set `target: local` for a CPU run, or set `resources.gpu`")
