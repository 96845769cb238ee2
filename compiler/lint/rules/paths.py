"""Shared questions the lint rules ask of a Spec: where the rank count was written, the model dims.

Mounts (`spec/mounts.py`) and the world size (`spec/topology.py`) are decided where `lower` decides
them too, so a rule and the Plan cannot disagree; this module only adds what rules need to report.
"""

from __future__ import annotations

from ...diagnostics import YamlPath
from ...spec.model import Spec


def ranks_path(spec: Spec) -> YamlPath:
    """Where the number of ranks comes from, for a "set here" related span."""
    return ("resources", "gpu") if spec.resources.gpu is not None else ("resources", "ranks")


def model_dim(spec: Spec, name: str) -> int | None:
    """A model dimension as the rules see it: `compose` has filled `model:` from the preset already;
    None when neither wrote it (MS102 reports that)."""
    return getattr(spec.model, name)


def dim_path(ctx_set, name: str) -> YamlPath:
    """Where a model dimension was written: `model.<name>`, else `preset`."""
    return ("model", name) if ctx_set(("model", name)) else ("preset",)
