"""A Modal run's folder on its Volume: where each of its files is, a bounded read, and the progress copy.

The generated function runs in `run_dir_in(plan.modal.runs_dir, plan)`; when that folder is under the
mount of one of the plan's Volumes (`lower._runs_dir` puts it under the checkpoints or cache Volume),
every file of the run folder is on that Volume, at its path below the mount (`volume_path`): the
receipt that `collect` reads after Modal's result expired, and the progress.jsonl that a running
container appends to. A container's writes reach the Volume when Modal commits it: in the background
every few seconds, and after each checkpoint (the generated app commits). `fetch_progress` copies a
Modal run's progress.jsonl from there into the local run folder, where `status`, `report` and the loss
curves read it as they read a local run's.
"""

from __future__ import annotations

import contextlib
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING

from megaspec.runtime.contract.files import READ_CAPS, UnreadableFile, read_bytes_capped, write_bytes_atomic
from megaspec.runtime.contract.rundir import PLAN_FILE, PROGRESS_FILE, archived_attempts, run_dir_in

from ...spec.mounts import is_under, normalize
from .modal_client import describe

if TYPE_CHECKING:
    from ..manifest import Manifest


def volume_path(run_dir: Path, name: str) -> tuple[str, str] | None:
    """(Volume name, path inside it) of the file `name` of the run folder, as the generated function
    writes it; None when the run folder is on no Volume (inside the container only)."""
    from megaspec.runtime.contract.plan import read_plan

    plan = read_plan(Path(run_dir) / PLAN_FILE)
    folder = normalize(run_dir_in(plan.modal.runs_dir, plan))
    volume = next((v for v in plan.modal.volumes if is_under(folder, v.mount)), None)  # none nest (MS403)
    if volume is None:
        return None
    return volume.name, posixpath.join(posixpath.relpath(folder, normalize(volume.mount)), name)


def volume_file_bytes(volume: str, path: str, kind: str = "receipt") -> bytes:
    """The file `path` (relative to the root) of the named Volume, read through the client, at most
    READ_CAPS[kind] bytes: a longer one raises UnreadableFile as soon as that much has come, and the
    rest is not downloaded. A file not there raises FileNotFoundError, a Volume not there Modal's
    NotFoundError."""
    import modal

    cap, data = READ_CAPS[kind], bytearray()
    with contextlib.closing(modal.Volume.from_name(volume).read_file(path)) as chunks:
        for chunk in chunks:
            data += chunk
            if len(data) > cap:
                raise UnreadableFile(f"{volume}:{path}", f"the {kind} on Volume `{volume}` is over {cap:,} bytes; "
                                                         f"megaspec reads {cap:,} at most")
    return bytes(data)


def fetch_progress(run_dir: Path, manifest: Manifest) -> str | None:
    """Copy the run's progress.jsonl from its Volume into `run_dir` (rewritten only when it changed);
    None when copied, else why there is none here. Never raises: a run's state does not hang on it.
    For a run done again in its folder, a file whose last event was written before this attempt was
    queued (`manifest`'s first transition) is the earlier attempt's (the new container moves it to
    `attempts/` when it starts): not copied."""
    running = not manifest.is_terminal
    since = manifest.transitions[0].at if archived_attempts(run_dir) else None
    try:
        location = volume_path(run_dir, PROGRESS_FILE)
    except (OSError, ValueError) as e:
        return f"no progress: the run's plan is unreadable ({str(e).splitlines()[0]})"
    if location is None:
        return ("progress is only in the container: the run folder is on no Volume (add `volumes.checkpoints` "
                "to see it here)")
    volume, path = location
    try:
        data = volume_file_bytes(volume, path, "progress")
    except FileNotFoundError:
        return (f"no progress on Volume `{volume}` yet (a running container commits every few seconds)" if running
                else f"the run left no progress on Volume `{volume}` (`{path}`)")
    except UnreadableFile as e:
        return f"progress not copied: {e.reason}"
    except Exception as e:  # noqa: BLE001 - a Volume missing, Modal refusing or unreachable: said, never raised
        return f"progress not read from Volume `{volume}`: {describe(e)}"
    if since is not None and _written_before(data, since):
        return f"no progress of this attempt on Volume `{volume}` yet (what is there is an earlier attempt's)"
    return _store(Path(run_dir) / PROGRESS_FILE, data)


def _written_before(data: bytes, since: str) -> bool:
    """Whether the last event of a progress file was written before `since` (UTC)."""
    from megaspec.runtime.contract.progress import event_or_none, written_before

    event = event_or_none(data.rstrip(b"\n").rsplit(b"\n", 1)[-1])
    return event is not None and written_before(event, since)


def _store(local: Path, data: bytes) -> str | None:
    """`data` as the local copy, unless it already is (its time then stays the first sight of those bytes)."""
    try:
        if local.exists() and read_bytes_capped(local, "progress") == data:
            return None
        write_bytes_atomic(local, data, durable=False)
    except (OSError, UnreadableFile) as e:
        return f"progress not copied to `{local}`: {e}"
    return None
