"""The real modal client is the checker: each generated app, imported offline, declares what the plan says.

`Function.info()` is computed locally (no credentials, no network), so GPU strings, timeouts,
retries, mounts, secrets, cluster shape and container reuse are compared against the Plan.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.codegen.lower import lower
from megaspec.compiler.codegen.render import render
from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.spec.model import Spec
from megaspec.runtime.contract.plan import Plan
from tests.conftest import REPO_ROOT

SPECS = sorted(p.name for p in (REPO_ROOT / "specs").glob("*.yaml") if not p.name.startswith("_"))
_counter = itertools.count()


def import_app(source: str, tmp_dir: Path):
    """Import generated source from a file under a unique module name (no credentials needed)."""
    name = f"megaspec_generated_{next(_counter)}"
    path = tmp_dir / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_info_matches(plan: Plan, module) -> None:
    info = module.run.info()
    r, m = plan.resources, plan.modal
    expected_gpus = [(g.split(":")[0], int(g.split(":")[1])) for g in r.modal_gpu]
    assert info.gpus == expected_gpus
    assert info.timeout == r.timeout_s
    assert info.max_retries == r.retries
    assert info.cpu == r.cpu and info.memory_mib == r.memory_mib
    assert info.single_use_containers is True
    assert {mount: (v.name, v.read_only) for mount, v in info.volumes.items()} == {
        v.mount: (v.name, False) for v in m.volumes}
    assert {mount: (b.bucket_name, b.key_prefix, b.read_only) for mount, b in info.cloud_bucket_mounts.items()} == {
        b.mount: (b.bucket, b.prefix, b.read_only) for b in m.buckets}
    assert len(info.secrets) == len(m.secrets)
    if plan.distributed.nodes > 1:
        assert (info.cluster_info.size, info.cluster_info.rdma) == (plan.distributed.nodes, True)
    else:
        assert info.cluster_info is None
    assert module.app.name == m.app_name and module.PLAN_HASH == plan.sha256()


@pytest.mark.parametrize("name", SPECS)
def test_spec_apps_match_their_plans(name: str, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    checked = check_spec(f"specs/{name}")
    plan = plan_for(checked)
    module = import_app(render(plan)["app.py"], tmp_path)
    assert_info_matches(plan, module)
    assert module.image is not None and len(module.secrets) == len(plan.modal.secrets)


def local_dirs(obj) -> dict[str, str]:
    """Every `add_local_dir` of an image, walked through the client's lazy layers: remote -> local folder."""
    found = {}
    for dep in obj._deps_() if getattr(obj, "_deps_", None) else []:
        if type(dep).__name__.endswith("Mount"):
            found |= {str(e.remote_path): str(e.local_dir) for e in dep.entries if hasattr(e, "local_dir")}
        else:
            found |= local_dirs(dep)
    return found


def test_the_users_model_code_is_shipped_where_the_rank_imports_it(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    plan = plan_for(check_spec("examples/own-model/h100.yaml"))
    module = import_app(render(plan)["app.py"], tmp_path)
    assert_info_matches(plan, module)
    shipped = local_dirs(module.image)
    assert plan.model.user is not None and plan.model.user.code == [d.remote for d in plan.modal.code_dirs]
    assert {d.remote: shipped[d.remote] for d in plan.modal.code_dirs} == {
        d.remote: str(REPO_ROOT / "examples" / "own-model" / "src") for d in plan.modal.code_dirs}
    assert shipped["/root/megaspec/runtime"].endswith("runtime")  # beside the runtime, not instead of it


GPU_TYPES = ["H100", "H200", "B200", "A100-80GB", "L40S"]
names = st.from_regex(r"[a-z][a-z0-9-]{2,12}", fullmatch=True)


@st.composite
def specs(draw) -> dict:
    nodes = draw(st.sampled_from([1, 1, 2]))
    gpu_type = draw(st.sampled_from(GPU_TYPES[:3] if nodes > 1 else GPU_TYPES))
    count = 8 if nodes > 1 else draw(st.sampled_from([1, 2, 4, 8]))
    fallbacks = draw(st.lists(st.sampled_from(GPU_TYPES), max_size=2, unique=True))
    gpu = [f"{gpu_type}:{count}", *(f"{t}:{count}" for t in fallbacks if t != gpu_type)]
    kinds = draw(st.lists(st.sampled_from(["cache", "checkpoints", "data", "home"]), unique=True))
    volumes = {k: {"name": f"vol-{k}", "mount": f"/vol/{k}", "version": draw(st.sampled_from([None, 1, 2]))}
               for k in kinds}
    buckets = {f"b{i}": {"bucket": draw(names), "mount": f"/mnt/b{i}", "prefix": draw(st.sampled_from([None, "p/"])),
                         "secret": draw(st.sampled_from([None, "aws-ro"])), "read_only": draw(st.booleans())}
               for i in range(draw(st.integers(0, 2)))}
    return {"megaspec": 1, "name": draw(names), "volumes": volumes, "buckets": buckets,
            "secrets": draw(st.lists(names, max_size=3, unique=True)),
            "resources": {"gpu": gpu if len(gpu) > 1 else gpu[0], "nodes": nodes, "exact": draw(st.booleans()),
                          "retries": draw(st.integers(0, 10)), "timeout": draw(st.integers(60, 86400))}}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=specs())
def test_generated_specs_match_their_plans(data: dict, tmp_path: Path):
    plan = lower(Spec.model_validate(data), spec_path="gen.yaml", spec_sha256="0" * 64, origins={})
    assert_info_matches(plan, import_app(render(plan)["app.py"], tmp_path))
