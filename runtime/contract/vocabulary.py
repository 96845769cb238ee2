"""The words every artifact of a run shares, defined once: the spec, the Plan, the run manifest, the
sweep manifest and the receipt all say a run's lane, where it runs and how it ended with these, and
the Spec and the Plan take each setting's choices from here. Pure typing (no pydantic), so the
linter imports it for nothing."""

from __future__ import annotations

from typing import Literal

Lane = Literal["train", "bench", "validate"]  # what a run measures; receipts of different lanes never compare
Target = Literal["modal", "local"]  # where a run executes
# How a finished run ended: a receipt's status, a manifest's last state. `diverged`: its loss rose past
# `train.divergence` (stopped there, or finished with `action: flag`); never the best of a sweep.
Outcome = Literal["ok", "error", "interrupted", "diverged"]

# The choices of a setting that the Spec offers and the Plan carries.
Precision = Literal["bf16", "fp32"]
CompileBackend = Literal["inductor", "eager"]  # eager: a CPU rehearsal's dynamo capture without Inductor kernels
ActivationCheckpointing = Literal["none", "selective", "full"]
ReshardAfterForward = Literal["default", "always", "never"]
DataSource = Literal["synthetic", "shards"]
TokenDtype = Literal["uint16", "uint32"]
ResumePolicy = Literal["auto", "never"]
CachePolicy = Literal["cold", "warm", "require-seed"]
CollectiveBackend = Literal["nccl", "gloo"]
Device = Literal["cuda", "cpu"]
VolumeKind = Literal["cache", "checkpoints", "data", "home"]
VolumeVersion = Literal[1, 2]
PathClass = Literal["synthetic", "volume", "local-disk", "bucket"]
BenchOp = Literal["all_reduce", "all_gather", "gemm"]
DivergenceAction = Literal["stop", "flag"]  # stop the run at the step, or flag it and go on
WandbMode = Literal["online", "offline"]
# A run's name (the spec's `name`, the Plan's, each sweep run's): it names files and folders
# (`build/<name>/`), so it can hold no `/` and never start with `.`.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
