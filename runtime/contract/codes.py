"""The runtime's diagnostic codes (MS8xx), carried in receipts: the one table of code -> name. Pure
data: no pydantic, no torch.

Stable names that runbooks and CI gates key on; `megaspec explain MS803` documents each one. A
receipt's `error.code` is a `RuntimeCode`, so a code missing here is refused where it is written
instead of reaching a receipt without a name.
"""

from typing import Literal

RUNTIME_CODES = {
    "MS801": "non-finite-loss",
    "MS802": "rank-crashed",
    "MS803": "rank-stalled",
    "MS804": "teardown-fault",
    "MS805": "insufficient-data",
    "MS806": "checkpoint-failed",
    "MS807": "cache-seed-missing",
    "MS808": "launch-failed",
    "MS809": "interrupted",
    "MS810": "validation-failed",
    "MS811": "cache-state-mixed",
    "MS812": "cache-seed-mismatch",
    "MS813": "bad-data",
    "MS814": "user-model-failed",
    "MS815": "storage-failed",
    "MS816": "fork-server-lost",
}

RuntimeCode = Literal[tuple(RUNTIME_CODES)]  # type: ignore[valid-type] - built from the table above
