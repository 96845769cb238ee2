"""Lint rules MS401-MS404 and MS408-MS411, storage: the data path, Volumes and bucket mounts.

The seed lesson behind them: object storage is the cold source of truth, Volumes hold the hot
and mutable state, one Volume per kind of state, and the container's own disk is ephemeral.
"""

from __future__ import annotations

from ...diagnostics import Severity
from ...spec.mounts import is_under, mount_of, mounts
from ...spec.scalar_text import append_inside_quotes
from .registry import RuleContext, rule

# Mounting over these hides the OS, the generated code (/root) or the process's own scratch space.
RESERVED_EXACT = ("/", "/root")
RESERVED_TREES = ("/root/megaspec", "/tmp", "/proc", "/sys", "/dev", "/usr", "/etc", "/bin", "/lib", "/var/run")


@rule("MS401", "hot-data-on-bucket")
def hot_data_on_bucket(ctx: RuleContext) -> None:
    """Checks that `data.path`, the path the training loop reads, is not on a bucket mount.

    Why: a bucket mount is a good import surface and a weak training surface: eight ranks reading
    shards through it turn the run into a filesystem benchmark. Stage the shards into a Volume
    before the measured loop.

    Example:
        buckets: {corpus: {bucket: my-corpus, mount: /mnt/corpus}}
        data: {source: shards, path: /mnt/corpus/tokens}

    Use instead:
        volumes: {data: {name: ms-shards, mount: /vol/data}}
        data: {source: shards, path: /vol/data/tokens, stage_from: /mnt/corpus/tokens}
    """
    path = ctx.spec.data.path
    bucket = mount_of(ctx.spec, path, "bucket") if path else None
    if bucket is not None:
        ctx.report(("data", "path"), f"`data.path` `{path}` is on the bucket mount `{bucket.label}`",
                   hint=f"Stage it into a Volume: set `data.path` under a Volume mount and `data.stage_from: {path}`",
                   related=[ctx.related(bucket.yaml_path, "bucket mounted here")])


@rule("MS402", "shared-volume", Severity.WARNING)
def shared_volume(ctx: RuleContext) -> None:
    """Checks that each Modal Volume holds one kind of state.

    Why: cache, checkpoints, data and home state have different lifecycles and writers. One Volume
    for two of them turns "did the checkpoint persist, did the cache warm" into "something in
    storage is weird".

    Example:
        volumes:
          cache: {name: ms-state, mount: /vol/cache}
          checkpoints: {name: ms-state, mount: /vol/ckpt}

    Use instead:
        volumes:
          cache: {name: ms-compile-cache, mount: /vol/cache}
          checkpoints: {name: ms-ckpt, mount: /vol/ckpt}
    """
    first: dict[str, tuple] = {}
    for m in (m for m in mounts(ctx.spec) if m.kind == "volume"):
        if m.name in first:
            other_key, other_path = first[m.name]
            ctx.report(("volumes", m.key, "name"), f"Volume `{m.name}` holds both `{other_key}` and `{m.key}` state",
                       hint=f"Use a separate Volume for `{m.key}`, e.g. `{m.name}-{m.key}`",
                       related=[ctx.related(other_path, "first used here")])
        else:
            first[m.name] = (m.key, ("volumes", m.key, "name"))


@rule("MS403", "mount-collision")
def mount_collision(ctx: RuleContext) -> None:
    """Checks that no two mounts share a path or nest inside each other.

    Why: Modal refuses two mounts at one path, and a mount nested in another hides part of it:
    files written under the inner path never reach the outer Volume.

    Example:
        volumes:
          data: {name: ms-shards, mount: /vol}
          cache: {name: ms-compile-cache, mount: /vol/cache}

    Use instead:
        volumes:
          data: {name: ms-shards, mount: /vol/data}
          cache: {name: ms-compile-cache, mount: /vol/cache}
    """
    seen = []
    for m in mounts(ctx.spec):
        for other in seen:
            if is_under(m.path, other.path) or is_under(other.path, m.path):
                how = ("is the same path as" if m.path == other.path
                       else "is inside" if is_under(m.path, other.path) else "contains")
                ctx.report(m.yaml_path, f"`{m.label}` mount `{m.path}` {how} `{other.label}` at `{other.path}`",
                           hint="Give every Volume and bucket its own top-level mount, e.g. `/vol/<kind>`",
                           related=[ctx.related(other.yaml_path, "other mount here")])
        seen.append(m)


@rule("MS404", "reserved-mount-path")
def reserved_mount_path(ctx: RuleContext) -> None:
    """Checks that no mount covers a system directory or the generated code.

    Why: a mount hides what is under it. At `/root` it hides the generated app and the runtime;
    at `/tmp`, `/usr` or `/dev` it hides the OS and the scratch space compile caches use.

    Example:
        volumes: {cache: {name: ms-compile-cache, mount: /tmp}}

    Use instead:
        volumes: {cache: {name: ms-compile-cache, mount: /vol/cache}}
    """
    for m in mounts(ctx.spec):
        hit = next((r for r in RESERVED_TREES if is_under(m.path, r)), None)
        if m.path in RESERVED_EXACT or hit:
            ctx.report(m.yaml_path, f"`{m.label}` mount `{m.path}` covers the reserved path `{hit or m.path}`",
                       hint=f"Mount under `/vol` or `/mnt` instead, e.g. `/vol/{m.key}`")


@rule("MS408", "data-path-not-on-volume")
def data_path_not_on_volume(ctx: RuleContext) -> None:
    """Checks that shard data read on Modal lives on a Volume.

    Why: a container's disk is empty at start and gone at exit. Shards at a plain path are either
    missing or re-staged on every run, inside the measured loop.

    Example:
        target: modal
        data: {source: shards, path: /data/tokens}

    Use instead:
        volumes: {data: {name: ms-shards, mount: /vol/data}}
        data: {source: shards, path: /vol/data/tokens}
    """
    spec, path = ctx.spec, ctx.spec.data.path
    if spec.target != "modal" or spec.data.source != "shards" or path is None or mount_of(spec, path):
        return
    ctx.report(("data", "path"), f"`data.path` `{path}` is not on a Volume; the container's disk is ephemeral",
               hint="Add `volumes.data: {name: ..., mount: /vol/data}` and put `data.path` under it")


@rule("MS409", "bucket-prefix-without-slash")
def bucket_prefix_without_slash(ctx: RuleContext) -> None:
    """Checks that every `buckets.*.prefix` ends with `/`.

    Why: Modal's `CloudBucketMount` raises on a key prefix without a trailing slash, at decoration
    time, so the generated app fails before anything runs.

    Example:
        buckets: {corpus: {bucket: my-corpus, mount: /mnt/corpus, prefix: tokens}}

    Use instead:
        buckets: {corpus: {bucket: my-corpus, mount: /mnt/corpus, prefix: tokens/}}
    """
    for key, bucket in ctx.spec.buckets.items():
        if bucket.prefix is not None and not bucket.prefix.endswith("/"):
            ctx.report(("buckets", key, "prefix"), f"`buckets.{key}.prefix` `{bucket.prefix}` does not end with `/`",
                       hint=f"Write `{bucket.prefix}/`", fix=(f"Write `{bucket.prefix}/`", append_inside_quotes("/")))


@rule("MS410", "stage-from-not-bucket-or-volume", Severity.WARNING)
def stage_from_not_mounted(ctx: RuleContext) -> None:
    """Checks that `data.stage_from` on Modal is on a bucket or Volume mount.

    Why: staging copies from `stage_from` into `data.path` inside the container. On Modal only
    mounted storage is there to copy from; any other path is empty.

    Example:
        data: {source: shards, path: /vol/data/tokens, stage_from: /datasets/tokens}

    Use instead:
        buckets: {corpus: {bucket: my-corpus, mount: /mnt/corpus}}
        data: {source: shards, path: /vol/data/tokens, stage_from: /mnt/corpus/tokens}
    """
    spec, src = ctx.spec, ctx.spec.data.stage_from
    if spec.target == "modal" and src is not None and mount_of(spec, src) is None:
        ctx.report(("data", "stage_from"), f"`data.stage_from` `{src}` is not on a bucket or Volume mount: "
                   "nothing is there to copy on Modal", hint="Mount the source with `buckets:` and point "
                   "`data.stage_from` under its mount")


@rule("MS411", "shards-without-path")
def shards_without_path(ctx: RuleContext) -> None:
    """Checks that `data.source: shards` comes with a `data.path`.

    Why: the loop reads token shards from `data.path`; without it there is nothing to read and
    the run fails at the first batch.

    Example:
        data: {source: shards}

    Use instead:
        data: {source: shards, path: /vol/data/tokens}
    """
    data = ctx.spec.data
    if data.source == "shards" and data.path is None:
        ctx.report(("data", "source"), "`data.source` `shards` without a `data.path` to read them from",
                   hint="Set `data.path` to the shard directory (under `volumes.data`), or use `source: synthetic`")

