"""Reporting stage: turns the sorted diagnostics of a lint run into one output format.

One renderer per format (`human.py` for full and concise, `json_.py`, `github.py`, `sarif.py`).
Renderers never read files: the caller passes the already-redacted source texts, so a credential
found in a spec can never leak through a snippet. Output is deterministic for a given input.
"""

from __future__ import annotations

from ...diagnostics import Diagnostic

FORMATS = ("human", "concise", "json", "github", "sarif")


def render_report(fmt: str, diagnostics: list[Diagnostic], *, texts: dict[str, str], num_files: int,
                  color: bool = False) -> str:
    """Render `diagnostics` (already sorted) as `fmt`; the text ends with a newline unless empty."""
    # Imported here so `megaspec lint` only loads the renderer it uses.
    if fmt == "human":
        from .human import render_full
        return render_full(diagnostics, texts=texts, num_files=num_files, color=color)
    if fmt == "concise":
        from .human import render_concise
        return render_concise(diagnostics, color=color)
    if fmt == "json":
        from .json_ import render_json
        return render_json(diagnostics)
    if fmt == "github":
        from .github import render_github
        return render_github(diagnostics)
    if fmt == "sarif":
        from .sarif import render_sarif
        return render_sarif(diagnostics)
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
