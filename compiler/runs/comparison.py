"""The comparison class of a run: which receipts may be put side by side. Decided here and only here.

Two runs are comparable when they agree on every field of `comparison_class`: the lane, whether
the run was a rehearsal, the observed GPU type and count and whether they matched the request,
the world size, the model's shape, the precision the parameters ran in, the compile posture, and
for the user's own model the sha256 of its code (two runs of different code are never equals).
Everything else (learning rate, batch, steps, seed) is what an experiment varies, so it is shown
as a difference, never a reason to refuse. `compare` refuses different classes; `report` groups by
class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from megaspec.runtime.contract.gpus import device_gpu_type
from megaspec.runtime.contract.plan import ModelPlan

if TYPE_CHECKING:
    from .records import RunRecord

# Field -> what a person calls it, in the order a refusal names them.
CLASS_FIELDS: dict[str, str] = {
    "lane": "lane", "rehearsal": "rehearsal", "gpu": "observed GPU type", "gpu_count": "observed GPU count",
    "matches_request": "observed GPU matches the request", "world_size": "world size", "model": "model shape",
    "precision": "precision", "compile": "compile", "code": "model code (sha256)",
}


def comparison_class(r: RunRecord) -> dict[str, object]:
    """The fields that must match for two runs to be compared (values are plain and printable)."""
    receipt, model = r.receipt, r.plan.model
    gpus = [d for d in receipt.hardware.observed_devices if d != "cpu"]
    gpu = sorted({device_gpu_type(d) or d for d in gpus})
    return {
        "lane": receipt.lane,
        "rehearsal": receipt.rehearsal,
        "gpu": "+".join(gpu) if gpu else "cpu",
        "gpu_count": receipt.hardware.observed_gpu_count * receipt.distributed.nodes,
        "matches_request": receipt.hardware.matches_request,
        "world_size": receipt.distributed.world_size,
        "model": model_shape(model),
        "code": model.user.code_sha256[:12] if model.user else "megaspec",
        "precision": receipt.parallelism.param_dtype,
        "compile": receipt.parallelism.compile,
    }


def model_shape(model: ModelPlan) -> str:
    """`12L d768 h12/12 ff2048 v32000` for a preset model; `entry(args) v32000` for the user's own."""
    if model.user is not None:
        args = ", ".join(f"{k}={v}" for k, v in sorted(model.user.args.items()))
        return f"{model.user.entry}({args}) v{model.vocab_size}"
    return (f"{model.n_layers}L d{model.d_model} h{model.n_heads}/{model.n_kv_heads} ff{model.d_ff} "
            f"v{model.vocab_size}")


def class_label(cls: dict[str, object]) -> str:
    """`train, 8 x H200, world 8, 12L d768 ..., bfloat16, compiled` (plus `REHEARSAL`, `GPU != request`)."""
    hw = "CPU" if cls["gpu"] == "cpu" else f"{cls['gpu_count']} x {cls['gpu']}"
    parts = [str(cls["lane"]), hw, f"world {cls['world_size']}", str(cls["model"]), str(cls["precision"]),
             "compiled" if cls["compile"] else "eager"]
    if cls["rehearsal"]:
        parts.insert(1, "REHEARSAL")
    if cls["matches_request"] is False:
        parts.append("GPU != request")
    return ", ".join(parts)


def class_differences(records: list[RunRecord]) -> list[tuple[str, list[object]]]:
    """(field, each run's value) for every class field on which the runs disagree."""
    classes = [comparison_class(r) for r in records]
    return [(field, [c[field] for c in classes]) for field in CLASS_FIELDS
            if len({repr(c[field]) for c in classes}) > 1]
