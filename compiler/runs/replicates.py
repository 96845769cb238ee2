"""Replicates: runs of one comparison class that differ only in `train.seed`. Decided here and only
here, for `report`'s table (mean ± std and n of each group) and its plots (one point with an error
bar per group; `train.seed` is never an axis)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

SEED_KEY = "train.seed"


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float  # the sample standard deviation; 0 for one run
    n: int

    def text(self, fmt: str = "{:.4f}") -> str:
        return f"{fmt.format(self.mean)} ± {fmt.format(self.std)} (n={self.n})"


def settings_key(values: dict[str, object], keys: list[str]) -> tuple[tuple[str, str], ...]:
    """What a run's replicates share: every swept setting but the seed."""
    return tuple((k, repr(values.get(k))) for k in keys if k != SEED_KEY)


def group(rows: list, keys: list[str]) -> dict[tuple, list]:
    """Rows (anything with `.values`) by their settings less the seed, in first-seen order."""
    out: dict[tuple, list] = {}
    for row in rows:
        out.setdefault(settings_key(row.values, keys), []).append(row)
    return out


def spread(values: list[float]) -> Spread:
    return Spread(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))
