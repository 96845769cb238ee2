"""Stage 3 of the compiler: the semantic lint rules, one module per family, in code order.

Importing this package registers every rule in `registry.REGISTRY`; `registry.run_rules` runs them.
training: MS201-MS205, MS211-MS217; user_model: MS218-MS222; evaluation: MS230-MS233; distributed: MS206-MS210; resources: MS301-MS310;
memory: MS311;
storage: MS401-MS404, MS408-MS411; image: MS405-MS407, MS412; sweep_block: MS5xx; tracking: MS6xx.
"""

from . import training, distributed, user_model, evaluation, resources, memory, storage, image, sweep_block, tracking  # noqa: F401, I001 (code order)
