"""What the fork server imports before it forks ranks (`workers.PRELOAD`): the rank code and the
parts of torch a rank imports lazily on its first use, then a frozen GC.

Freezing after the imports is the Python docs' advice before `fork()`: the children's collections
never touch these objects, so their memory pages stay shared, and the server's own exit skips them
(its exit-time collection would otherwise take ~0.5 s while it still holds the terminal's pipes).
"""

from __future__ import annotations

import gc

import torch._dynamo  # noqa: F401 - imported by a rank's first meta-device init and its optimizer (~0.8 s)

from . import dist, workers  # noqa: F401 - everything a rank imports at module level; its entry point

gc.freeze()
