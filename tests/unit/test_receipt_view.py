"""The receipt view's triage: a hint for every stage the runtime can name, saying what that stage covers."""

from __future__ import annotations

from megaspec.compiler.runs.receipt_view import RUNTIME_TRIAGE, format_receipt
from megaspec.runtime.receipt import STAGES, Receipt
from tests.unit.test_manifest import make_receipt


def test_every_runtime_stage_has_a_hint_in_stage_order():
    assert tuple(RUNTIME_TRIAGE) == STAGES


def test_a_data_error_at_init_points_at_the_data_not_the_rendezvous():
    error = {"code": "MS805", "stage": "init", "rank": 1, "step": 1, "message": "shard a.bin is short"}
    text = format_receipt(Receipt.model_validate(make_receipt("error", error)))
    hint = next(line for line in text.splitlines() if "look first at" in line)
    assert "data" in hint and "rendezvous" not in hint
