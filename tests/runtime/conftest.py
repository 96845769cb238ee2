"""Plans for runtime tests, lowered by the real compiler from a spec: the tiny preset on CPU/gloo.

`make_plan` writes a spec, lints it and lowers it (`codegen/build.plan_for`), so every derived value
(batch geometry, precision, env, timeouts) is the one `megaspec compile` would produce. Only what a
spec cannot say goes into the plan afterwards (`plan=`): directories under the test's tmp_path.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.lint.check import check_spec
from megaspec.runtime.contract.plan import Plan


def _deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def lowered(spec: dict[str, Any]) -> Plan:
    """spec dict -> lint (no errors allowed) -> lower."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(json.dumps(spec), encoding="utf-8")
        checked = check_spec(path)
        errors = [f"{d.code} {d.message}" for d in checked.diagnostics if d.is_error]
        assert checked.spec is not None and not errors, errors
        return plan_for(checked)


def make_plan(ranks: int = 2, *, gpu: str | None = None, global_batch: int = 8, micro_batch: int | None = None,
              steps: int = 6, seq_len: int = 32, plan: dict[str, Any] | None = None, **spec: Any) -> Plan:
    """The tiny preset on `ranks` CPU ranks (or `gpu` x `ranks` GPUs); `spec` deep-merges into the spec,
    `plan` into the lowered plan's JSON (only for what no spec can say: directories of this test)."""
    body: dict[str, Any] = {
        "megaspec": 1, "name": "tiny-cpu", "target": "local", "preset": "tiny",
        "resources": {"gpu": f"{gpu}:{ranks}"} if gpu else {"ranks": ranks},
        "train": {"steps": steps, "warmup_steps": 1, "global_batch": global_batch,
                  "micro_batch": micro_batch or global_batch // ranks, "seq_len": seq_len, "lr": 3e-3,
                  "weight_decay": 0.0},
        "checkpoint": {"resume": "never"},
        "distributed": {"timeout": 20, "init_timeout": 30},
    }
    lowered_plan = lowered(_deep_update(body, spec))
    if not plan:
        return lowered_plan
    return Plan.model_validate(_deep_update(lowered_plan.model_dump(mode="json", by_alias=True), plan))


def require_seed(seed: Path, cache_dir: Path | None = None) -> dict[str, Any]:
    """`make_plan` arguments for `cache.policy: require-seed`: the spec as lint accepts it (the seed on
    a cache Volume), then the seed and the cache dir moved under this test's tmp_path (Volumes exist
    only on Modal), in the plan and in the env the ranks start with."""
    cache_dir = cache_dir or seed.parent / "compile-cache"
    env = {"TORCHINDUCTOR_CACHE_DIR": str(cache_dir), "TRITON_CACHE_DIR": f"{cache_dir}/triton"}
    return {"volumes": {"cache": {"name": "ms-cache", "mount": "/vol/cache"}},
            "cache": {"policy": "require-seed", "seed": "/vol/cache/seed"},
            "plan": {"cache": {"seed": str(seed), "dir": str(cache_dir)}, "distributed": {"env": env}}}


@pytest.fixture
def plan_factory():
    return make_plan


def timeouts_fired_ms(run_dir: Path) -> set[int]:
    """The timeouts the ranks' error files say ended a wait (gloo: `Timed out waiting 4000ms`; the
    rendezvous store: `timeout after 10000ms`). Which timeout ended a stall is recorded by the run
    itself, so a test asserts on it instead of on the wall-clock time (which load stretches)."""
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in run_dir.glob("logs/**/error.json"))
    return {int(ms) for ms in re.findall(r"(?:Timed out waiting|timeout after) (\d+)ms", text)}
