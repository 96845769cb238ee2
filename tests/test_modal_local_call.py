"""The generated Modal app, run for real through `Function.local()`: no servers, no credentials.

`.local()` calls the raw function in this process (Modal's own offline path), so this exercises
the generated `run(plan_json)` end to end: the plan-hash check, the env hardening, the runtime's
launcher and the receipt it returns. Only Modal's placement (image, GPUs, Volumes) is skipped.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from megaspec.compiler.codegen.build import origins_of
from megaspec.compiler.codegen.lower import lower
from megaspec.compiler.codegen.render import render, write_build
from megaspec.compiler.lint.check import check_spec
from megaspec.compiler.runs.backends.modal import find_entrypoint, load_app_module
from megaspec.compiler.runs.manifest import parse_receipt

pytestmark = pytest.mark.slow
SPEC = "specs/cpu-local.yaml"


def cpu_plan(runs_dir: Path):
    """The CPU spec, shortened to a few steps, with receipts written under `runs_dir`."""
    checked = check_spec(SPEC)
    train = checked.spec.train.model_copy(update={"steps": 6, "warmup_steps": 2})
    spec = checked.spec.model_copy(update={"train": train})
    plan = lower(spec, spec_path=SPEC, spec_sha256=hashlib.sha256(Path(SPEC).read_bytes()).hexdigest(),
                 origins=origins_of(checked), run_id="tiny-cpu-20260102-030405-0001")
    return plan.model_copy(update={"modal": plan.modal.model_copy(update={"runs_dir": str(runs_dir)})})


@pytest.fixture
def restored_environ():
    """The generated function exports the plan's env hardening into its process: undo it afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_generated_function_runs_locally_and_returns_a_valid_receipt(tmp_path, restored_environ):
    plan = cpu_plan(tmp_path / "runs")
    app_py = write_build(render(plan), tmp_path / "build", plan.name) / "app.py"
    app, function = find_entrypoint(load_app_module(app_py))
    assert app.name == plan.modal.app_name

    result = function.local(plan.to_json())

    receipt = parse_receipt(result)
    assert receipt.status == "ok", receipt.error
    assert (receipt.run_id, receipt.plan.sha256) == (plan.run.run_id, plan.sha256())
    assert receipt.steps.completed == 6 and receipt.distributed.world_size == 2
    assert (tmp_path / "runs" / plan.run.run_id / "receipt.json").is_file()


def test_generated_function_refuses_a_plan_it_was_not_compiled_for(tmp_path, restored_environ):
    plan = cpu_plan(tmp_path / "runs")
    app_py = write_build(render(plan), tmp_path / "build", plan.name) / "app.py"
    _, function = find_entrypoint(load_app_module(app_py))
    other = plan.model_copy(update={"train": plan.train.model_copy(update={"lr": 1.0e-2})})
    receipt = function.local(other.to_json())  # returned, not raised: Modal's retries would pay for it again
    assert receipt["status"] == "error" and receipt["error"]["code"] == "MS808", receipt["error"]
    assert "was not compiled into this app" in receipt["error"]["message"]
