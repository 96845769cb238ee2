"""The generated one-GPU seeding app (`megaspec cache seed` on Modal), checked by the real modal client.

Offline: the app is imported from its file and `Function.info()` (computed locally, no credentials)
must ask for ONE GPU of the spec's type, exactly, with the spec's image, only the cache Volume at its
mount (which holds `cache.seed`), no bucket and no Secret. Slow: the generated function run through
`.local()` on a CPU plan writes a seed that the run's own restore finds and accepts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.codegen.render import render, render_seed, write_build
from megaspec.compiler.codegen.seed_app import seed_function, seed_problem
from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.runs.backends.modal import find_entrypoint, load_app_module
from megaspec.compiler.spec.mounts import is_under
from megaspec.runtime.contract.seed_file import seed_path
from megaspec.runtime.state import cachestate
from tests.conftest import REPO_ROOT


def seed_app(plan, tmp_path: Path):
    app_py = write_build(render_seed(plan), tmp_path / "build", seed_function(plan).app_name) / "app.py"
    return load_app_module(app_py)


def spec_plan(tmp_path: Path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    checked = check_spec(str(path))
    assert checked.spec is not None and not [d for d in checked.diagnostics if d.is_error], checked.diagnostics
    return plan_for(checked)


@pytest.mark.parametrize(("name", "gpu"), [("h200x8.yaml", "H200"), ("b200x8.yaml", "B200")])
def test_the_readme_specs_seed_on_one_gpu_of_their_type_into_the_cache_volume(name, gpu, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    plan = plan_for(check_spec(f"specs/{name}"))
    module = seed_app(plan, tmp_path)
    app, function = find_entrypoint(module)
    info = function.info()
    assert info.gpus == [(gpu, 1)] and plan.resources.gpu_count == 8
    cache = next(v for v in plan.modal.volumes if v.kind == "cache")
    assert {m: (v.name, v.read_only) for m, v in info.volumes.items()} == {cache.mount: (cache.name, False)}
    assert is_under(str(seed_path(plan)), cache.mount)  # where the function writes, on that Volume
    assert info.secrets == [] and info.cloud_bucket_mounts == {}  # the run's bucket and its Secret stay out
    assert plan.modal.secrets == [] and plan.modal.buckets  # (the run app does mount the bucket)
    assert (info.cpu, info.memory_mib) == (plan.resources.cpu / 8, plan.resources.memory_mib // 8)
    assert info.timeout == plan.distributed.init_timeout_s and info.max_retries is None
    assert info.single_use_containers is True
    assert app.name == f"{plan.modal.app_name}-seed" and module.PLAN_HASH == plan.sha256()
    # The same image as the run's app: identical image blocks in both sources.
    run_source, seed_source = render(plan)["app.py"], render_seed(plan)["app.py"]
    image_block = run_source[run_source.index("image = ("):run_source.index("\n)\n", run_source.index("image = ("))]
    assert image_block in seed_source


def test_an_h100_seed_is_asked_for_exactly(tmp_path):
    for name in ("h200x8.yaml", "_base.yaml"):  # the spec with its base, in a project of their own
        (tmp_path / name).write_text((REPO_ROOT / "specs" / name).read_text().replace("H200:8", "H100:8"))
    plan = plan_for(check_spec(str(tmp_path / "h200x8.yaml")))
    assert plan.resources.modal_gpu == ["H100:8"]  # the run may be placed on an H200; its seed may not
    _, function = find_entrypoint(seed_app(plan, tmp_path))
    assert function.info().gpus == [("H100!", 1)]


CPU_SPEC = (REPO_ROOT / "specs" / "cpu-local.yaml").read_text().replace("target: local", "target: modal").replace(
    "compile: false", "compile: true")


@pytest.mark.parametrize(("extra", "says"), [
    ("cache: {policy: warm}\n", "sets no `cache.seed`"),
    ("cache: {policy: warm, seed: /vol/cache/seed}\n", "no `volumes.cache`"),
    ("volumes: {cache: {name: c, mount: /vol/cache}}\ncache: {policy: warm, seed: /elsewhere/seed}\n",
     "is not under the cache Volume's mount `/vol/cache`"),
])
def test_what_cannot_be_seeded_on_modal_says_why_and_how(tmp_path, extra, says):
    problem = seed_problem(spec_plan(tmp_path, CPU_SPEC + extra))
    assert problem is not None and says in problem[0] and problem[1].startswith(("Set", "Add", "Move"))


def test_a_seedable_plan_has_no_problem(tmp_path):
    plan = spec_plan(tmp_path, CPU_SPEC + "volumes: {cache: {name: c, mount: /vol/cache}}\n"
                                          "cache: {policy: warm, seed: /vol/cache/seed}\n")
    assert seed_problem(plan) is None and seed_function(plan).gpu is None  # a CPU-only plan seeds on CPU


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The seed function is executing locally")  # the Volume is a local folder here
def test_the_seed_the_generated_function_writes_is_the_one_the_run_restores(tmp_path):
    """`.local()` runs the generated function in this process, which compiles in a new one (a real
    one-device compile on CPU), whatever this process compiled before."""
    plan = spec_plan(tmp_path, CPU_SPEC.replace("timeout: 2m", "timeout: 10m")
                     + "volumes: {cache: {name: c, mount: /vol/cache}}\n"
                     + "cache: {policy: require-seed, seed: /vol/cache/seed}\n")
    vol = tmp_path / "vol"  # the Volume's mount, moved here (a spec may not mount under /tmp)
    volumes = [v.model_copy(update={"mount": str(vol)}) for v in plan.modal.volumes]
    plan = plan.model_copy(update={"cache": plan.cache.model_copy(update={"seed": str(vol / "seed")}),
                                   "modal": plan.modal.model_copy(update={"volumes": volumes})})
    _, function = find_entrypoint(seed_app(plan, tmp_path))
    manifest = function.local(plan.to_json())
    assert manifest["key"]["device"] == "cpu" and (vol / "seed" / "seed.json").is_file()
    assert cachestate.restore_seed_dir(plan, tmp_path / "run-cache") is True  # the run's check and copy
    assert cachestate.count_cache_files(tmp_path / "run-cache")["fxgraph"] > 0
