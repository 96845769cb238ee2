"""The one-GPU seeding app of a Modal plan (`megaspec cache seed` on Modal): what it asks Modal for.

A compile-cache seed is valid only for the torch build and the GPU type it was compiled on, so it
is made on Modal by its own small app: the run's image, ONE GPU of the run's first GPU type (asked
for exactly: an `H100` seed must not be compiled on an H200), the run's share of CPU and memory per
GPU, and only the cache Volume, on which `cache.seed` lies. No bucket and no Secret: the seeding
step reads synthetic tokens and writes one folder. `render.render_seed_app` turns this into code;
the function it defines calls the runtime's `make_seed_in_new_process` on `seed_path(plan)`, the same path a
`require-seed` run restores from.
"""

from __future__ import annotations

from dataclasses import dataclass

from megaspec.runtime.contract.plan import Plan, VolumeMount

from ..diagnostics import InternalError
from ..spec.gpu import modal_type
from ..spec.mounts import is_under

SEED_APP_SUFFIX = "-seed"  # `<name>-seed`: the app's name on Modal and its build folder


@dataclass(frozen=True, slots=True)
class SeedFunction:
    """What the seeding function asks Modal for."""

    app_name: str
    gpu: str | None  # one GPU, exactly the run's first type ("H200", "H100!"); None on a CPU-only plan
    cpu: float
    memory_mib: int
    timeout_s: int
    volume: VolumeMount  # the cache Volume
    tags: dict[str, str]


def seed_problem(plan: Plan) -> tuple[str, str] | None:
    """Why `plan` cannot be seeded on Modal, as (message, fix); None when it can."""
    if not plan.train.compile:
        return "`train.compile` is false: there is no compile to seed", "Set `train.compile: true`"
    if plan.cache.seed is None:
        return "the spec sets no `cache.seed`", "Set `cache.seed` to a folder under the cache Volume's mount"
    volume = cache_volume(plan)
    if volume is None:
        return ("the spec has no `volumes.cache`: a seed written on Modal must be on a Volume, or it vanishes "
                "with the container", "Add `volumes.cache: {name: ..., mount: /vol/cache}` and set `cache.seed` "
                "under it")
    if not is_under(plan.cache.seed, volume.mount):
        return (f"`cache.seed` `{plan.cache.seed}` is not under the cache Volume's mount `{volume.mount}`: the run "
                "could not read it", f"Move `cache.seed` under `{volume.mount}`")
    return None


def cache_volume(plan: Plan) -> VolumeMount | None:
    return next((v for v in plan.modal.volumes if v.kind == "cache"), None)


def seed_function(plan: Plan) -> SeedFunction:
    """The seeding function of a plan free of `seed_problem`s."""
    problem, volume = seed_problem(plan), cache_volume(plan)
    if problem is not None or volume is None:
        raise InternalError(f"seed_function() got a plan that cannot be seeded: {problem}")
    r = plan.resources
    per = max(r.gpu_count, 1)  # a CPU-only plan seeds in a container shaped like the run's
    return SeedFunction(
        app_name=f"{plan.modal.app_name}{SEED_APP_SUFFIX}",
        gpu=modal_type(r.gpu_type, exact=True) if r.gpu_type else None,
        cpu=r.cpu / per, memory_mib=r.memory_mib // per,
        timeout_s=plan.distributed.init_timeout_s,  # a rank's init + first step: where the compile happens
        volume=volume, tags={**plan.modal.tags, "megaspec_role": "seed"},
    )
