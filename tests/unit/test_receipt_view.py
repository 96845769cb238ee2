"""The receipt view's triage: a hint for every stage the runtime can name, saying what that stage covers."""

from __future__ import annotations

from megaspec.compiler.runs.receipt_view import RUNTIME_TRIAGE, format_receipt
from megaspec.runtime.contract.receipt import STAGES, Receipt
from tests.unit.test_manifest import make_receipt


def test_every_runtime_stage_has_a_hint_in_stage_order():
    assert tuple(RUNTIME_TRIAGE) == STAGES


def test_a_data_error_at_init_points_at_the_data_not_the_rendezvous():
    error = {"code": "MS805", "stage": "init", "rank": 1, "step": 1, "message": "shard a.bin is short"}
    text = format_receipt(Receipt.model_validate(make_receipt("error", error)))
    hint = next(line for line in text.splitlines() if "look first at" in line)
    assert "data" in hint and "rendezvous" not in hint


def test_the_tracking_section_says_where_each_trackers_run_is_and_how_an_offline_one_is_uploaded():
    tracking = {"tensorboard": {"event_file": "tensorboard/events.out.tfevents.1.vm.1.0"},
                "wandb": {"run_id": "r-1", "project": "sweeps", "entity": "team", "group": "sw-1", "mode": "offline",
                          "dir": "wandb/offline-run-20261201_101010-r-1"}}
    text = format_receipt(Receipt.model_validate({**make_receipt("ok"), "tracking": tracking}))
    section = text.split("\n\ntracking\n")[1].split("\n\n")[0].splitlines()
    assert section == ["  tensorboard       tensorboard/events.out.tfevents.1.vm.1.0",
                       "  wandb             team/sweeps/r-1, group sw-1 (offline)",
                       "                    wandb sync <run dir>/wandb/offline-run-20261201_101010-r-1 uploads it"]
    nothing = format_receipt(Receipt.model_validate({**make_receipt("ok"), "tracking": {}}))
    assert "tracking\n                    asked for, but no tracker wrote its files" in nothing
