"""The whole Modal lifecycle with a receipt the generated function really produced.

Nothing runs on the test server, so the function's body runs here with `.local()` (Modal's own
offline path) on the plan the run was launched with; its return value becomes the server's answer
to `get()`, and `collect` stores it through the real client.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from megaspec.compiler.cli import cli
from megaspec.compiler.codegen.render import render, write_build
from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.backends.modal import find_entrypoint, launch, load_app_module
from tests.test_modal_local_call import cpu_plan, restored_environ  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def test_collect_stores_the_receipt_the_generated_function_returned(mock, tmp_path, restored_environ):  # noqa: F811
    plan = cpu_plan(tmp_path / "volume")
    plan = plan.model_copy(update={"target": "modal"})
    app_py = write_build(render(plan), tmp_path / "build", plan.name) / "app.py"
    run_dir = tmp_path / "runs" / plan.run.run_id
    assert launch(plan, app_py, run_dir, echo=lambda line: None).state == "detached"

    _, function = find_entrypoint(load_app_module(app_py))
    mock.set("result.json", json.dumps(function.local(plan.to_json())))

    result = CliRunner().invoke(cli, ["collect", str(run_dir)], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.startswith("status: ok"), result.output
    m = mf.read_manifest(run_dir)
    receipt = json.loads((run_dir / "receipt.json").read_text())
    assert m.state == "ok" and (receipt["run_id"], receipt["plan"]["sha256"]) == (m.run_id, m.plan_sha256)
    assert receipt["steps"]["completed"] == 6
