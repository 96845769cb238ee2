"""The git revision and dirty flag of the repository holding a spec: what the receipt's provenance says
produced a run. The compiler records it in the plan at apply time (a sweep's runs from their template,
a Modal run before its container, where the spec is not); the runtime reads the spec's repository only
for a plan without it."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(spec_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(spec_dir), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(spec_path: str) -> tuple[str | None, bool | None]:
    """(sha, dirty) of the repository holding the spec; (None, None) outside git."""
    spec_dir = Path(spec_path).resolve().parent
    sha = _git(spec_dir, "rev-parse", "HEAD") if spec_dir.is_dir() else None
    if sha is None:
        return None, None
    porcelain = _git(spec_dir, "status", "--porcelain", "--untracked-files=no")
    return sha, (bool(porcelain) if porcelain is not None else None)
