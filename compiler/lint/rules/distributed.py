"""Lint rules MS206-MS210, distributed launch hazards: compile skew, debug modes, timeouts.

These are the lessons of an 8-GPU FSDP2 run that hung at its first step: ranks that reach the first
collective at different times, settings that change bootstrap, and watchdogs that mistake a long
compile for a dead worker. Each is decided from the spec, before a GPU is rented.
"""

from __future__ import annotations

from ...diagnostics import Severity
from ...spec.topology import geometry
from .registry import RuleContext, rule

MIN_COMPILE_TIMEOUT_S = 600  # a cold Inductor compile of a real model takes minutes per rank


def _duration(seconds: int) -> str:
    """`300` -> `5m`, as a user would write it."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _multi_gpu(ctx: RuleContext) -> bool:
    geo = geometry(ctx.spec)
    return geo.device == "cuda" and geo.world_size > 1


def _seed_hint(spec) -> str:
    """require-seed, and on Modal the cache Volume its seed lives on (what MS214 would ask for next)."""
    volume = "" if spec.volumes.cache is not None or spec.target == "local" else (
        " with the seed on a cache Volume (`volumes.cache: {name: ms-compile-cache, mount: /vol/cache}`, "
        "`cache.seed: /vol/cache/seed`)")
    return f"Set `cache.policy: require-seed`{volume} and make its seed once with `megaspec cache seed SPEC`"


@rule("MS206", "cold-compile-multi-gpu")
def cold_compile_multi_gpu(ctx: RuleContext) -> None:
    """Checks that a multi-GPU compiled run starts from a warmed compile cache.

    Why: with a cold Inductor cache, ranks spend different wall time compiling; the first ranks
    reach the first collective and wait while others still compile, and the run hangs like an
    NCCL bug. A compile-cache seed, made once with `megaspec cache seed SPEC` and restored by
    `cache.policy: require-seed`, gives every rank the same warm start (your own model's too: the
    seed is keyed by its entry, args and code sha256); `preset: tiny` separates a hang from model
    complexity.

    Example:
        resources: {gpu: "H200:8"}
        train: {compile: true}

    Use instead:
        volumes: {cache: {name: ms-compile-cache, mount: /vol/cache}}
        cache: {policy: require-seed, seed: /vol/cache/seed}
        train: {compile: true}
    """
    spec = ctx.spec
    if not (_multi_gpu(ctx) and spec.train.compile and spec.cache.policy != "require-seed" and spec.preset != "tiny"):
        return
    ctx.report(("train", "compile"),
               f"`train.compile` on `{geometry(spec).world_size}` GPUs with `cache.policy` `{spec.cache.policy}`: ranks "
               "compile at different speeds and hang at the first collective",
               hint=_seed_hint(spec)
                    + ("" if spec.model.entry else ", or use `preset: tiny` to separate the hang from model complexity"),
               severity=None if spec.lane in ("train", "bench") else Severity.WARNING,
               related=[ctx.related(("resources", "gpu"), "GPU count set here"),
                        ctx.related(("cache", "policy"), "cache policy set here") if ctx.set(("cache", "policy"))
                        else None])


@rule("MS207", "detail-debug-multi-gpu", Severity.WARNING)
def detail_debug_multi_gpu(ctx: RuleContext) -> None:
    """Checks that `distributed.debug: DETAIL` is not used on a multi-GPU run.

    Why: DETAIL wraps every collective in consistency checks; it changes bootstrap behavior and
    cost about 31% of throughput when measured (gloo, 2 ranks). Keep INFO on GPU runs; use DETAIL
    in a local rehearsal to find a mismatched collective.

    Example:
        resources: {gpu: "H100!:8"}
        distributed: {debug: DETAIL}

    Use instead:
        distributed: {debug: INFO}
    """
    if ctx.spec.distributed.debug == "DETAIL" and _multi_gpu(ctx):
        ctx.report(("distributed", "debug"), f"`distributed.debug` `DETAIL` on `{geometry(ctx.spec).world_size}` GPUs "
                   "changes bootstrap and slows every collective",
                   hint="Set `distributed.debug: INFO`; use `DETAIL` on a single-GPU or CPU repro")


@rule("MS208", "heartbeat-while-compiling", Severity.WARNING)
def heartbeat_while_compiling(ctx: RuleContext) -> None:
    """Checks that the worker heartbeat is off while `train.compile` is on.

    Why: with `heartbeat: on`, torch's NCCL heartbeat monitor (`TORCH_NCCL_ENABLE_MONITORING`)
    ends the process when the collective watchdog looks stuck for its timeout; a first step that
    compiles for minutes can look like that, so a healthy run is ended during warmup as a dead worker.

    Example:
        train: {compile: true}
        distributed: {heartbeat: on}

    Use instead:
        distributed: {heartbeat: off}
    """
    if ctx.spec.distributed.heartbeat == "on" and ctx.spec.train.compile:
        ctx.report(("distributed", "heartbeat"), "`distributed.heartbeat` is `on` with `train.compile`: a long "
                   "compile looks like a dead worker", hint="Set `distributed.heartbeat: off` for compiled runs",
                   related=[ctx.related(("train", "compile"), "compile enabled here")])


@rule("MS209", "autotune-on-fragile-lane", Severity.WARNING)
def autotune_on_fragile_lane(ctx: RuleContext) -> None:
    """Checks that Inductor autotune is off on multi-rank runs.

    Why: the autotune subprocess competes with the model for the same GPU memory and asks Triton
    for shared-memory budgets the kernel cannot get. On a multi-rank run that memory pressure is
    what breaks first, so autotune stays off there.

    Example:
        resources: {gpu: "H200:8"}
        distributed: {autotune: true}

    Use instead:
        distributed: {autotune: false}
    """
    world = geometry(ctx.spec).world_size
    if ctx.spec.distributed.autotune and world > 1:
        ctx.report(("distributed", "autotune"), f"`distributed.autotune` on `{world}` ranks competes with the "
                   "model for memory", hint="Set `distributed.autotune: false`; autotune on a single rank instead")


@rule("MS210", "timeout-shorter-than-compile", Severity.WARNING)
def timeout_shorter_than_compile(ctx: RuleContext) -> None:
    """Checks that the first-step timeout leaves room for a compile on multi-rank runs.

    Why: the first step includes the compile, and ranks compile at different speeds. A collective
    timeout under 10 minutes kills healthy ranks that are still compiling, and the error reads
    like a network failure.

    Example:
        train: {compile: true}
        distributed: {timeout: 5m}

    Use instead:
        distributed: {timeout: 5m, init_timeout: 30m}
    """
    dist, world = ctx.spec.distributed, geometry(ctx.spec).world_size
    if not ctx.spec.train.compile or world < 2:
        return
    key = "init_timeout" if dist.init_timeout is not None else "timeout"
    seconds = getattr(dist, key)
    if seconds < MIN_COMPILE_TIMEOUT_S:
        ctx.report(("distributed", key), f"`distributed.{key}` is `{_duration(seconds)}`, shorter than a compile "
                   f"(`{MIN_COMPILE_TIMEOUT_S // 60}m`) with `train.compile` on",
                   hint="Set `distributed.init_timeout` to at least `10m` (it covers init and the first step)",
                   related=[ctx.related(("train", "compile"), "compile enabled here")])
