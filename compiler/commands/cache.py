"""`megaspec cache seed SPEC`: make the compile-cache seed a `cache.policy: require-seed` run restores.

The spec is linted and lowered like `apply` does; then its model is compiled once on one device,
the way a rank compiles it, and `cache.seed` gets torch's cache artifacts, the compiled kernels and
a `seed.json` of what it was built for (torch, device, model shape, precision, compile settings).
Where the device is follows the spec's `target`:
- local: this machine's CPU, in a new process (`runtime/seed.make_seed_in_new_process`);
- modal: one GPU of the spec's GPU type, with the spec's image, in a generated one-GPU app
  (`build/<name>-seed/app.py`, `codegen/seed_app.py`) that writes the seed into the cache Volume;
  this command launches it like `apply` does and waits for the seed.
"""

from __future__ import annotations

from pathlib import Path

import click

from megaspec.runtime.contract.rundir import PLAN_FILE

from ..runs.manifest import BackendError
from .run_output import fail


@click.group()
def cache() -> None:
    """The compile cache: `megaspec cache seed SPEC` makes the seed `cache.policy: require-seed` restores."""


@cache.command("seed")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=click.Path(file_okay=False),
              help=f"Modal specs: where `<name>-seed/app.py` and `{PLAN_FILE}` go (as `megaspec compile -o`).")
@click.option("--print", "print_app", is_flag=True,
              help="Modal specs: print the generated seeding app and launch nothing.")
@click.option("--seed-dir", type=click.Path(file_okay=False), default=None,
              help="Local specs: where the seed goes (default: the spec's `cache.seed`).")
def seed(spec: str, out_dir: str, print_app: bool, seed_dir: str | None) -> None:
    """Compile SPEC's model once on one device and save its compile cache as the seed.

    Runs the spec's micro-batch through the model with `train.compile` as a rank would (activation
    checkpointing, per-block compile, FSDP2), then writes torch's cache artifacts, the compiled
    kernels and `seed.json` (torch version, device, model shape, precision, compile settings) to
    `cache.seed`. A `target: local` spec compiles on this machine's CPU; a Modal spec on one GPU of
    its GPU type, in a generated one-GPU app that writes into the cache Volume (Modal credentials
    needed). A `require-seed` run refuses a seed built for anything else. Exit 0 on success, 1 otherwise (2 usage, 130 Ctrl-C).
    """
    from .paths import require_existing

    require_existing([spec])
    plan = _seed_plan(spec)
    if plan.target == "local":
        if print_app:
            fail("`--print` prints the Modal seeding app; this spec seeds locally", "Leave out `--print`")
        _seed_here(spec, plan, seed_dir)
    else:
        if seed_dir:
            fail("`--seed-dir` is for local specs: on Modal the seed goes to `cache.seed`, on the cache Volume "
                 "the run restores it from", "Leave out `--seed-dir`, or change `cache.seed` in the spec")
        _seed_on_modal(plan, Path(out_dir), print_app)


def _seed_plan(spec: str):
    """The Plan the seed is built for: the spec as `apply` runs it (refused when nothing compiles)."""
    from ..codegen.build import plan_for
    from .apply import _checked_spec

    plan = plan_for(_checked_spec(spec, None))
    if not plan.train.compile:
        fail(f"`{spec}` has `train.compile: false`: there is no compile to seed", "Set `train.compile: true`")
    return plan


def _seed_here(spec: str, plan, seed_dir: str | None) -> None:
    from megaspec.runtime.contract.seed_file import seed_path
    from megaspec.runtime.train.seed_make import SeedNotMade, make_seed_in_new_process

    where = Path(seed_dir) if seed_dir else seed_path(plan)
    if where is None:
        fail(f"`{spec}` sets no `cache.seed`", "Set `cache.seed` in the spec, or give `--seed-dir DIR`")
    click.echo(f"cache seed: compiling {plan.name} on one {plan.distributed.device} device -> {where}", err=True)
    try:
        manifest = make_seed_in_new_process(plan, where)
    except SeedNotMade as e:
        fail(str(e), "Fix what the last lines say; `megaspec apply` the spec with `cache.policy: cold` to see it train")
    click.echo(_summary(str(where), manifest.model_dump(mode="json")), nl=False)


def _seed_on_modal(plan, out_dir: Path, print_app: bool) -> None:
    from megaspec.runtime.contract.seed_file import seed_path

    from ..codegen.render import render_seed, write_build
    from ..codegen.seed_app import seed_function, seed_problem
    from ..runs.backends.modal_seed import make_seed_on_modal

    problem = seed_problem(plan)
    if problem is not None:
        fail(f"`{plan.run.spec_path}`: {problem[0]}", problem[1])
    files, function = render_seed(plan), seed_function(plan)
    if print_app:
        click.echo(files["app.py"], nl=False)
        return
    app_dir = write_build(files, out_dir, function.app_name)
    where = f"{seed_path(plan)} on Volume `{function.volume.name}`"
    click.echo(f"cache seed: compiling {plan.name} on one {function.gpu or 'CPU'} on Modal -> {where} "
               f"(app {app_dir.as_posix()}/app.py)", err=True)
    try:
        manifest = make_seed_on_modal(plan, app_dir / "app.py", echo=lambda line: click.echo(line, err=True))
    except BackendError as e:
        fail(str(e), e.hint, e.code)
    click.echo(_summary(where, manifest), nl=False)


def _summary(where: str, manifest: dict) -> str:
    k = manifest["key"]
    m = k["model"]
    model = (f"{m['entry']} (code sha256 {m['code_sha256'][:12]})" if "entry" in m
             else f"{m['n_layers']} layers x d_model {m['d_model']}")
    return (f"seed: {where}\n"
            f"  built for: torch {k['torch']}, {k['device']}, {model}, "
            f"micro_batch {k['micro_batch']} x seq_len {k['seq_len']}, {k['precision']}, "
            f"activation_checkpointing {k['activation_checkpointing']}\n"
            f"  compile: {manifest['compile_s']:.1f} s; {manifest['inductor_files']} cache files, "
            f"{manifest['artifacts_bytes']:,} bytes of torch cache artifacts\n"
            "  a run with `cache.policy: require-seed` and this `cache.seed` restores it before compiling\n")


COMMANDS = [cache]
