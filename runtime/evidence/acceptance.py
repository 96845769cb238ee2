"""The validate lane's verdict: acceptance checks on a finished run, never a throughput claim.

Checks, each recorded by name: losses finite, final loss under `max_final_loss`, and the per-step
losses equal (within `loss_rtol`) to a reference receipt's losses (determinism).
"""

from __future__ import annotations

import math

from ..contract.plan import Plan
from ..contract.receipt import Receipt, Verdict, read_receipt


def _same_losses(losses: list[float], reference: list[float], rtol: float) -> tuple[bool, str]:
    if len(losses) != len(reference):
        return False, f"{len(losses)} losses, the reference has {len(reference)}"
    for step, (got, want) in enumerate(zip(losses, reference, strict=True), start=1):
        if not math.isclose(got, want, rel_tol=rtol, abs_tol=0.0):
            return False, f"step {step}: loss {got!r}, the reference has {want!r} (rtol {rtol})"
    return True, ""


def evaluate(plan: Plan, receipt: Receipt) -> Verdict:
    criteria = plan.validate_
    checks: dict[str, bool] = {}
    reasons: list[str] = []
    losses = receipt.losses
    checks["losses_recorded"] = bool(losses)
    if not losses:
        reasons.append("the run recorded no losses")
    if criteria is None or criteria.finite_loss:
        checks["finite_loss"] = all(math.isfinite(x) for x in losses)
        if not checks["finite_loss"]:
            reasons.append("a loss is not finite")
    if criteria is not None and criteria.max_final_loss is not None and losses:
        checks["final_loss_below_max"] = losses[-1] < criteria.max_final_loss
        if not checks["final_loss_below_max"]:
            reasons.append(f"final loss {losses[-1]:.6f} is not below {criteria.max_final_loss}")
    if criteria is not None and criteria.reference_receipt:
        try:
            same, why = _same_losses(losses, read_receipt(criteria.reference_receipt).losses, criteria.loss_rtol)
        except (OSError, ValueError) as exc:
            same, why = False, f"the reference receipt cannot be read: {exc}"
        checks["matches_reference"] = same
        if not same:
            reasons.append(why)
    return Verdict(passed=all(checks.values()), checks=checks, reasons=reasons,
                   reference_receipt=criteria.reference_receipt if criteria else None)
