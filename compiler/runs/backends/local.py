"""The local backend: run a Plan on this machine through the runtime's elastic launcher.

`runs/<run-id>/` gets plan.json, manifest.json and receipt.json; the runtime writes per-rank logs
and error files into the same directory. The manifest goes `planned -> running -> ok | error`,
or `interrupted` on Ctrl-C. torch is imported only here, inside the function, via the runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..local_process import this_process
from ..manifest import (
    RECEIPT_FILE,
    Manifest,
    ManifestError,
    advance,
    new_manifest,
    store_receipt,
    write_manifest,
)

EventSink = Callable[[dict], None]


def run(plan, run_dir: Path, *, on_event: EventSink | None = None) -> Manifest:
    """Run `plan` to completion; returns the terminal manifest (Ctrl-C: `interrupted`)."""
    from megaspec.runtime.launch import run_plan

    run_dir = Path(run_dir)  # run_plan writes plan.json, progress, logs and the receipt here
    manifest = new_manifest(plan, backend="local")
    write_manifest(run_dir, manifest)
    manifest = advance(manifest, "running", process=this_process())
    write_manifest(run_dir, manifest)
    try:
        receipt = run_plan(plan, run_dir, on_event=on_event)
    except KeyboardInterrupt:
        write_manifest(run_dir, _interrupted(run_dir, manifest))
        raise
    except Exception as e:  # noqa: BLE001 - the launcher itself failed; rank 0 may still have left a receipt
        manifest = _after_launcher_failure(run_dir, manifest, e)
    else:
        manifest = store_receipt(run_dir, manifest, receipt, source="the launcher's receipt")
    write_manifest(run_dir, manifest)
    return manifest


def _interrupted(run_dir: Path, manifest: Manifest) -> Manifest:
    found = (run_dir / RECEIPT_FILE).exists()
    return advance(manifest, "interrupted", receipt=RECEIPT_FILE if found else None,
                   notes=[*manifest.notes, "interrupted by Ctrl-C on this machine"])


def _after_launcher_failure(run_dir: Path, manifest: Manifest, error: Exception) -> Manifest:
    """A receipt rank 0 wrote before the launcher died says more than the launcher's exception."""
    receipt_path = run_dir / RECEIPT_FILE
    if receipt_path.exists():
        return store_receipt(run_dir, manifest, receipt_path.read_text(encoding="utf-8"), source=f"`{receipt_path}`")
    message = f"the local launcher failed before any receipt was written: {type(error).__name__}: {error}"
    return advance(manifest, "error", error=ManifestError(stage="bootstrap", message=message))
