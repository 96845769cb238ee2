"""What a lane produced on one rank (and what the launcher staged): the raw material of the receipt.

The train loop fills it as it goes, so a rank that fails mid-run still hands over how far it got;
`assemble.build_receipt` turns it into the receipt's data, steps, metrics and checkpoint sections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..contract.receipt import BenchReport, CheckpointReport, DivergenceReport, ModelReport


@dataclass
class LaneOutcome:
    staged: dict[str, Any] = field(default_factory=dict)  # the launcher's `data.stage` report
    data: dict[str, Any] = field(default_factory=dict)  # `data.agree_on_steps`: micro-steps, tokens dropped
    losses: list[float] = field(default_factory=list)  # global mean loss of steps 1..len(losses)
    evals: list[dict[str, Any]] = field(default_factory=list)  # `train.eval`: {"step", "loss"} in step order
    completed: int | None = None  # optimizer steps every rank finished; None: len(losses)
    measured: int = 0
    excluded: int = 0
    resumed_from: int | None = None
    checkpoint: CheckpointReport | None = None
    metrics: dict[str, Any] = field(default_factory=dict)  # `measure.summarize`
    num_fsdp_units: int | None = None
    bench: BenchReport | None = None
    model: ModelReport | None = None  # the user's own model, as built on this rank
    diverged: DivergenceReport | None = None  # the loss rose past `train.divergence`

    @property
    def num_completed(self) -> int:
        return len(self.losses) if self.completed is None else self.completed
