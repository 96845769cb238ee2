"""The words every artifact of a run shares, defined once: the spec, the Plan, the run manifest, the
sweep manifest and the receipt all say a run's lane, where it runs and how it ended with these.
Pure typing (no pydantic), so the linter imports it for nothing."""

from __future__ import annotations

from typing import Literal

Lane = Literal["train", "bench", "validate"]  # what a run measures; receipts of different lanes never compare
Target = Literal["modal", "local"]  # where a run executes
# How a finished run ended: a receipt's status, a manifest's last state. `diverged`: its loss rose past
# `train.divergence` (stopped there, or finished with `action: flag`); never the best of a sweep.
Outcome = Literal["ok", "error", "interrupted", "diverged"]
