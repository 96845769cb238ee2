"""The model a spec trains: its `model:` fields, the rest from its preset (`preset_fill`, which compose also
calls on the merged document), and the run's sequence length (`seq_len`).

A spec with `model.entry` trains the user's own code: it has no dimensions lint can read, so
`model_dims` says None and each caller says what it cannot judge.
"""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from megaspec.runtime.contract.presets import DIAGNOSTIC_PRESET, PRESETS, ModelDims

from .model import Spec


def preset_fill(preset: str, written: Mapping[str, Any], seq_len: object = None) -> dict[str, Any]:
    """The `model:` fields `preset` supplies: its value for each field not written (or written null).

    The diagnostic preset takes the run's `train.seq_len` whatever it is (its rotary tables are
    built that long), so a hang can be diagnosed on the real topology at the real sequence length.
    The one place a preset is applied: `compose` fills the merged data with it (and records the
    origin), `model_dims` the Spec of a run.
    """
    filled = {k: v for k, v in PRESETS[preset].as_dict().items() if written.get(k) is None}
    longer = isinstance(seq_len, int) and not isinstance(seq_len, bool) and seq_len > filled.get("max_seq_len", seq_len)
    if preset == DIAGNOSTIC_PRESET and longer:
        filled["max_seq_len"] = seq_len
    return filled


def model_dims(spec: Spec) -> ModelDims | None:
    """The model a spec trains: its `model:` fields, the rest from its preset (the diagnostic one by default);
    None for the user's own model (`model.entry`)."""
    if spec.model.entry is not None:
        return None
    written = spec.model.model_dump(include={f.name for f in fields(ModelDims)})
    return ModelDims(**{**written, **preset_fill(spec.preset or DIAGNOSTIC_PRESET, written, spec.train.seq_len)})


def seq_len(spec: Spec) -> int | None:
    """The run's sequence length: `train.seq_len`, else its model's `max_seq_len` (None: your own model
    without `train.seq_len`, which MS219 reports)."""
    if spec.train.seq_len is not None:
        return spec.train.seq_len
    dims = model_dims(spec)
    return dims.max_seq_len if dims else None
