"""What `megaspec plan` says of the user's own model: its parameters and FLOPs, counted on the meta device.

Lint never runs the user's code; `plan` may. The count runs in a child Python (the runtime's
`megaspec.runtime.train.user_model`, the same `prepare` a rank runs), so the compiler imports
neither torch nor the user's code, a crash there cannot take `plan` down, and without torch the
answer says so instead of guessing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from megaspec.runtime.contract.plan import Plan

COUNT_TIMEOUT_S = 300


@dataclass(frozen=True)
class ModelCount:
    num_params: int | None = None
    flops_per_token: int | None = None
    why_not: str | None = None  # why nothing was counted

    def text(self) -> str:
        if self.num_params is None:
            return f"parameters not counted: {self.why_not}"
        flops = f"{self.flops_per_token:,} FLOPs/token" if self.flops_per_token else "FLOPs not counted"
        return f"{self.num_params:,} parameters (built on the meta device), {flops}"


def count(plan: Plan) -> ModelCount:
    """Build the plan's user model on the meta device in a child process, from the code folders on this
    machine (a Modal plan names the image's)."""
    user = plan.model.user
    assert user is not None
    here = user.model_copy(update={"code": [str(f) for f in plan.code_here()]})
    plan = plan.model_copy(update={"model": plan.model.model_copy(update={"user": here})})
    try:
        done = subprocess.run([sys.executable, "-m", "megaspec.runtime.train.user_model"], input=plan.to_json(),
                              capture_output=True, text=True, timeout=COUNT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return ModelCount(why_not=f"building it on the meta device took over {COUNT_TIMEOUT_S} s")
    if "No module named 'torch'" in done.stderr:
        return ModelCount(why_not="torch is not installed here (the run counts them)")
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ModelCount(why_not=f"the count failed ({(done.stderr.strip().splitlines() or ['no output'])[-1]})")
    return ModelCount(answer.get("num_params"), answer.get("flops_per_token"), answer.get("error"))
