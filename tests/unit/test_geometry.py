"""World size and batch geometry come from one function (`spec/topology.geometry`): the Plan lower
writes, the rehearsal, the batch rules (MS201, MS202) and the memory estimate (MS311) all agree with
it, on a matrix of specs."""

from __future__ import annotations

import pytest

from megaspec.compiler.codegen.build import plan_for
from megaspec.compiler.codegen.rehearsal import rehearse
from megaspec.compiler.lint.rules.memory import spec_estimate
from megaspec.compiler.spec.topology import geometry
from megaspec.runtime.contract import memory
from tests.unit.test_rules_training import lint

BATCH_RULES = {"MS201", "MS202"}
# (resources, train) -> the geometry: (nodes, per node, world, device, global, micro, accum)
MATRIX = [
    ({"gpu": "H200:8"}, {"global_batch": 64, "micro_batch": 4}, (1, 8, 8, "cuda", 64, 4, 2)),
    ({"gpu": "H200:8"}, {"global_batch": None, "micro_batch": 2}, (1, 8, 8, "cuda", 16, 2, 1)),
    ({"gpu": "H200:8", "nodes": 2}, {"global_batch": 64, "micro_batch": 2}, (2, 8, 16, "cuda", 64, 2, 2)),
    ({"gpu": ["H100!:4", "H200:4"]}, {"global_batch": 48, "micro_batch": 3}, (1, 4, 4, "cuda", 48, 3, 4)),
    ({"gpu": "h100!"}, {"global_batch": 8, "micro_batch": 4}, (1, 1, 1, "cuda", 8, 4, 2)),
    ({"gpu": None, "ranks": 3}, {"global_batch": 12, "micro_batch": 2, "compile": False}, (1, 3, 3, "cpu", 12, 2, 2)),
    ({"gpu": None}, {"global_batch": None, "micro_batch": 1, "compile": False}, (1, 1, 1, "cpu", 1, 1, 1)),
    ({"gpu": "H200:8"}, {"global_batch": 60, "micro_batch": 4}, (1, 8, 8, "cuda", 60, 4, 1)),  # not divisible
    ({"gpu": "H200:8"}, {"global_batch": 16, "micro_batch": 4}, (1, 8, 8, "cuda", 16, 4, 0)),  # ranks without work
]


@pytest.mark.parametrize(("resources", "train", "expected"), MATRIX)
def test_lower_rules_rehearsal_and_memory_agree_with_geometry(tmp_path, resources, train, expected):
    from megaspec.compiler.lint.check import check_spec

    diagnostics = lint(tmp_path, resources=resources, train=train, preset="tiny")
    checked = check_spec(tmp_path / "spec.yaml")
    geo = geometry(checked.spec)
    assert (geo.nodes, geo.nproc_per_node, geo.world_size, geo.device, geo.global_batch, geo.micro_batch,
            geo.grad_accum) == expected
    batch_findings = {d.code for d in diagnostics} & BATCH_RULES
    assert batch_findings == (set() if geo.divisible else {"MS201" if geo.grad_accum else "MS202"})
    if batch_findings:
        return  # lower refuses a spec with errors
    plan = plan_for(checked)
    d, t = plan.distributed, plan.train
    assert (d.nodes, d.nproc_per_node, d.world_size, d.device, t.global_batch, t.micro_batch, t.grad_accum) == expected
    if geo.device == "cuda":  # a rehearsal keeps the world size; one sequence per rank, no accumulation
        rehearsed = geometry(rehearse(checked.spec)[0])
        assert (rehearsed.world_size, rehearsed.global_batch, rehearsed.micro_batch, rehearsed.grad_accum) == \
            (geo.world_size, geo.world_size, 1, 1)
    if geo.device == "cuda":
        assert memory.for_plan(plan) == spec_estimate(checked.spec)
