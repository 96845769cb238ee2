"""Starting a run: the launcher's entry point (`entry.run_plan`, `python -m megaspec.runtime.launch`),
the fork server the ranks are forked from, what that server preloads, and each rank's main.

`run_plan` is looked up on first use: importing this package (for `fork_server`, which the local
backend starts before it imports torch) must not import the launcher's torch imports.
"""


def __getattr__(name: str):
    if name in ("run_plan", "main"):
        from . import entry

        return getattr(entry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
