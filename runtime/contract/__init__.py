"""What both halves share: the vocabulary (lanes, targets, outcomes, codes, errors), the facts
(GPU types, presets, prices, the memory estimate), the two contracts (the Plan in, the Receipt out)
and the formats of the files in a run folder. Pure Python and pydantic: the compiler imports these
and, of the rest of the runtime, only the two entry points it launches (`launch`, `train.seed_make`).
"""
