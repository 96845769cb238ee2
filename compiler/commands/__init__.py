"""The CLI verbs, one module per family; `cli.py` imports each only when its command runs."""
