"""The runtime's diagnostic codes (MS8xx), carried in receipts: the one table of their `Code`s. Pure
data: no pydantic, no torch.

Stable names that runbooks and CI gates key on; `megaspec explain MS803` documents each one. A
receipt's `error.code` is a `RuntimeCode`, so a code missing here is refused where it is written
instead of reaching a receipt without a name.
"""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Code:
    """A diagnostic code and its stable kebab-case name; the compiler's stage codes are `Code`s too."""

    code: str  # "MS803"
    name: str  # names the problem: "rank-stalled"


NON_FINITE_LOSS = Code("MS801", "non-finite-loss")
RANK_CRASHED = Code("MS802", "rank-crashed")
RANK_STALLED = Code("MS803", "rank-stalled")
TEARDOWN_FAULT = Code("MS804", "teardown-fault")
INSUFFICIENT_DATA = Code("MS805", "insufficient-data")
CHECKPOINT_FAILED = Code("MS806", "checkpoint-failed")
CACHE_SEED_MISSING = Code("MS807", "cache-seed-missing")
LAUNCH_FAILED = Code("MS808", "launch-failed")
INTERRUPTED = Code("MS809", "interrupted")
VALIDATION_FAILED = Code("MS810", "validation-failed")
CACHE_STATE_MIXED = Code("MS811", "cache-state-mixed")
CACHE_SEED_MISMATCH = Code("MS812", "cache-seed-mismatch")
BAD_DATA = Code("MS813", "bad-data")
USER_MODEL_FAILED = Code("MS814", "user-model-failed")
STORAGE_FAILED = Code("MS815", "storage-failed")
FORK_SERVER_LOST = Code("MS816", "fork-server-lost")

RUNTIME_CODES: dict[str, str] = {c.code: c.name for c in list(globals().values()) if isinstance(c, Code)}
RuntimeCode = Literal[tuple(RUNTIME_CODES)]  # type: ignore[valid-type] - built from the table above
