"""The modal backend's launch: import the generated app, run it detached, spawn the one function.

`launch` connects first (`modal_client.connect`: bounded, credentials checked), imports
`build/<name>/app.py` from its file, runs the app with `detach=True` under Modal's own output (the
image build and object creation are visible), and spawns the training function with the plan
JSON. The app id goes into the manifest as soon as the app exists, the call id and dashboard URL
once spawned (`detached`). A signal during the launch (Ctrl-C, SIGTERM, SIGHUP) ends the manifest
`interrupted` with the app id and the command that stops the app; a connection lost during it ends
`error` at stage collector (megaspec lost track; the run may exist), never either of the other
two. `modal_collect.py` follows the call afterwards. `modal` is imported inside
functions: compiling and linting never need it.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType

from megaspec.runtime.contract.files import write_text_atomic
from megaspec.runtime.contract.rundir import PLAN_FILE
from megaspec.runtime.contract.seed_file import SEED_FILE, seed_path

from ...codegen.seed_app import cache_volume
from ...spec.mounts import is_under
from ..interrupts import raising_signals, signal_name, signum_of
from ..manifest import BackendError, Manifest, ManifestError, ModalCall, advance, new_manifest, write_manifest
from .modal_client import check_client_version, connect, describe, identity, is_auth_error, is_lost_connection
from .modal_volume import volume_file_bytes


def load_app_module(app_py: Path) -> ModuleType:
    """Import a generated app from its file; importing is network-free (Modal objects are lazy)."""
    spec = importlib.util.spec_from_file_location(f"megaspec_app_{app_py.parent.name.replace('-', '_')}", app_py)
    if spec is None or spec.loader is None:
        raise BackendError(f"cannot import the generated app `{app_py}`", hint="Run `megaspec compile` again")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_entrypoint(module: ModuleType):
    """The module's `modal.App` and its one Modal Function (the generator emits exactly one)."""
    import modal

    apps = [v for v in vars(module).values() if isinstance(v, modal.App)]
    functions = [v for v in vars(module).values() if isinstance(v, modal.Function)]
    if len(apps) != 1 or len(functions) != 1:
        raise BackendError(
            f"`{module.__file__}` defines {len(apps)} Modal apps and {len(functions)} functions; expected 1 and 1",
            hint="Regenerate it with `megaspec compile`; generated files are not meant to be edited",
        )
    return apps[0], functions[0]


def missing_seed(plan) -> str | None:
    """Why a `require-seed` plan's seed is not on its cache Volume (its run would stop at MS807 once its
    containers were up), or None: the seed is there, the policy is another, or the Volume could not be
    read (the run checks again before training)."""
    seed, volume = seed_path(plan), cache_volume(plan)
    if plan.cache.policy != "require-seed" or seed is None or volume is None or not is_under(str(seed), volume.mount):
        return None
    seed_json = (PurePosixPath(seed.as_posix()).relative_to(volume.mount) / SEED_FILE).as_posix()
    try:
        volume_file_bytes(volume.name, seed_json, "seed manifest")
    except Exception as e:  # noqa: BLE001 - only "not there" refuses the launch
        from modal.exception import NotFoundError

        if not isinstance(e, (FileNotFoundError, NotFoundError)):
            return None
        return (f"MS807: `cache.policy: require-seed`, but the compile-cache seed `{seed}` is not on Volume "
                f"`{volume.name}` (no `{seed_json}`); nothing was spawned. Make it first with "
                f"`megaspec cache seed {plan.run.spec_path}`, then apply again")
    return None


@dataclass
class Spawn:
    """What the launch got as far as: a call id means the run exists, whatever failed afterwards."""

    app_id: str | None = None
    call_id: str | None = None
    dashboard_url: str | None = None
    problem: BaseException | None = None  # an Exception, or the KeyboardInterrupt of a signal


def launch(plan, app_py: Path | Callable[[], Path], run_dir: Path, *, echo: Callable[[str], None] = print,
           notes: list[str] | None = None) -> Manifest:
    """Spawn the run detached; the manifest ends `detached`, `error` (bootstrap; the connection lost
    during the launch, stage collector; or a `require-seed` run whose seed is not on its cache Volume:
    nothing is spawned), or `interrupted` by a signal, which is raised again once the manifest says so
    (`interrupts.Signalled`, or KeyboardInterrupt). The manifest has the app id from the moment the
    app exists. `app_py` may be a function that renders the app: it is called once the credentials are
    checked and Modal answers. `notes` start the new manifest's notes (a run done again: where its
    earlier attempt is)."""
    check_client_version(plan.modal.client_version, launching=True)
    connect(echo, launching=True)
    who = identity()
    app, function = find_entrypoint(load_app_module(app_py() if callable(app_py) else app_py))
    write_text_atomic(run_dir / PLAN_FILE, plan.to_json())  # collect reads it to find the receipt's Volume
    manifest = advance(new_manifest(plan, backend="modal"), "planned", notes=list(notes or []))
    write_manifest(run_dir, manifest)
    missing = missing_seed(plan)
    if missing is not None:  # refused here, before an image build and GPU containers, not at MS807 there
        manifest = advance(manifest, "error", error=ManifestError(stage="bootstrap", message=missing))
        write_manifest(run_dir, manifest)
        return manifest
    echo("building the image and creating the app on Modal (Modal's own output follows)")
    spawn = spawn_detached(app, function, plan.to_json(),
                           on_app=lambda app_id: write_manifest(run_dir, advance(manifest, "planned",
                                                                                 modal=ModalCall(app_id=app_id, **who))))
    manifest = _manifest_after(manifest, spawn, who)
    write_manifest(run_dir, manifest)
    if isinstance(spawn.problem, KeyboardInterrupt) and spawn.call_id is None:
        raise spawn.problem
    if manifest.state == "error" and is_auth_error(spawn.problem):
        raise BackendError(f"Modal rejected the credentials: {describe(spawn.problem)}", hint="Run `modal token new`")
    return manifest


def spawn_detached(app, function, plan_json: str, *, on_app: Callable[[str], object] | None = None) -> Spawn:
    """Run the app detached and spawn its function; `on_app(app_id)` as soon as the app's block is entered.

    A signal (Ctrl-C, SIGTERM, SIGHUP) or a lost connection inside the app's block is kept here before
    Modal's `app.run(detach=True)` sees it: that block swallows a Ctrl-C, and with output on a
    ConnectionError, so nothing would tell them from a launch that simply ended."""
    import modal

    spawn = Spawn()
    try:
        with raising_signals(), contextlib.ExitStack() as running:
            with modal.enable_output():  # the image build and object creation, in Modal's words
                running.enter_context(app.run(detach=True))
            # Output ends before the app's block does, so Modal's closing "App completed." (the
            # app is detached, not completed) is not printed.
            spawn.app_id = app.app_id
            if on_app is not None:
                on_app(spawn.app_id)
            try:
                call = function.spawn(plan_json)
                spawn.call_id, spawn.dashboard_url = call.object_id, call.get_dashboard_url()
            except BaseException as e:
                spawn.problem = e
                raise
    except (Exception, KeyboardInterrupt) as e:  # a signal, image build, app creation, spawn or disconnect
        spawn.problem = spawn.problem or e
    spawn.app_id = spawn.app_id or getattr(app, "app_id", None)
    return spawn


def _manifest_after(manifest: Manifest, spawn: Spawn, who: dict) -> Manifest:
    """The manifest the launch left; `who` is where it was launched from (`modal_client.identity`)."""
    app = ModalCall(app_id=spawn.app_id, **who) if spawn.app_id else None
    if spawn.call_id is not None:
        record = ModalCall(function_call_id=spawn.call_id, app_id=spawn.app_id, dashboard_url=spawn.dashboard_url,
                           **who)
        notes = [f"the call was spawned, but disconnecting failed: {describe(spawn.problem)}"] if spawn.problem else []
        return advance(manifest, "detached", modal=record, notes=[*manifest.notes, *notes])
    stop = (f"`modal app stop {spawn.app_id}` stops app `{spawn.app_id}` if it is still there" if spawn.app_id
            else "Modal's client stops the app it was creating (`modal app list` shows any left)")
    if isinstance(spawn.problem, KeyboardInterrupt) or spawn.problem is None:
        # no problem at all: a Ctrl-C that reached Modal's block before ours (it swallows them)
        name = signal_name(signum_of(spawn.problem)) if spawn.problem else "Ctrl-C"
        return advance(manifest, "interrupted", modal=app,
                       notes=[*manifest.notes, f"the launch was interrupted ({name}) before the run was spawned; {stop}"])
    if is_lost_connection(spawn.problem):
        where = f"in app `{spawn.app_id}`" if spawn.app_id else "while its app was being created"
        logs = f"`modal app logs {spawn.app_id}`" if spawn.app_id else "`modal app list`"
        return advance(manifest, "error", modal=app, error=ManifestError(stage="collector", message=(
            f"the connection to Modal was lost during the launch ({describe(spawn.problem)}); the run may have "
            f"started {where} without megaspec recording its call: look with {logs}; {stop}")))
    return advance(manifest, "error", modal=app,
                   error=ManifestError(stage="bootstrap", message=describe(spawn.problem)))
