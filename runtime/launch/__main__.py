"""`python -m megaspec.runtime.launch --plan plan.json --run-dir runs/x`."""

from .entry import main

raise SystemExit(main())
