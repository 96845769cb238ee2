"""The modal backend: launch the generated app detached, then collect its receipt by call id.

`launch` imports `build/<name>/app.py` from its file, runs the app with `detach=True` and spawns
the one training function with the plan JSON; the call id, app id and dashboard URL go into the
manifest (`detached`). `collect` polls `FunctionCall.from_id(id).get(timeout=0)` once, with the
catch order from the Modal client's own semantics, and advances the manifest. `cancel` stops the
call and its containers and ends the manifest `interrupted`. The call graph is
only a snapshot for triage (which container, which state); success is decided by `get()` and the
receipt it returns, never by the graph. `modal` is imported inside functions: compiling and
linting never need it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from megaspec.runtime.files import write_text_atomic

from ..manifest import (
    BackendError,
    ManifestError,
    ModalCall,
    advance,
    new_manifest,
    read_manifest,
    store_receipt,
    utc_now,
    write_manifest,
)

RESULT_RETENTION_DAYS = 7  # Modal keeps spawn() results this long, then get() raises OutputExpiredError
FunctionCallFromId = Callable[[str], object]


def require_credentials() -> None:
    """Fail before any network call when no Modal token is configured (env or ~/.modal.toml)."""
    from modal.config import config

    if not (config.get("token_id") and config.get("token_secret")):
        raise BackendError(
            "Modal credentials not found: `megaspec apply --target modal` needs a Modal token",
            hint="Run `modal token new` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET), "
            "or rehearse on this machine with `--target local`",
        )


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


def launch(plan, app_py: Path, run_dir: Path, *, echo: Callable[[str], None] = print):
    """Spawn the run detached and return the manifest (`detached`, or `error` at stage bootstrap)."""
    require_credentials()
    app, function = find_entrypoint(load_app_module(app_py))
    write_text_atomic(run_dir / "plan.json", plan.to_json())  # collect reads it to find the receipt's Volume
    manifest = new_manifest(plan, backend="modal")
    write_manifest(run_dir, manifest)
    record, problem = _spawn_detached(app, function, plan.to_json())
    if record is None:
        manifest = advance(manifest, "error", error=ManifestError(stage="bootstrap", message=_describe(problem)))
        write_manifest(run_dir, manifest)
        if _is_auth_error(problem):
            raise BackendError(f"Modal rejected the credentials: {problem}", hint="Run `modal token new`")
        return manifest
    notes = [f"the call was spawned, but disconnecting failed: {_describe(problem)}"] if problem else []
    manifest = advance(manifest, "detached", modal=record, notes=notes)
    write_manifest(run_dir, manifest)
    echo(f"detached: {record.function_call_id}  {record.dashboard_url or ''}".rstrip())
    return manifest


def _spawn_detached(app, function, plan_json: str) -> tuple[ModalCall | None, Exception | None]:
    """(call record, problem): a problem after the spawn must not lose the call id."""
    import modal

    record = None
    try:
        with modal.enable_output(), app.run(detach=True):
            call = function.spawn(plan_json)
            record = ModalCall(function_call_id=call.object_id, app_id=app.app_id,
                               dashboard_url=call.get_dashboard_url())
    except Exception as e:  # noqa: BLE001 - image build, app creation, spawn or disconnect: classified by caller
        return record, e
    return record, None


def _is_auth_error(error: Exception | None) -> bool:
    from modal.exception import AuthError

    return isinstance(error, AuthError)


def poll(function_call) -> tuple[str, object]:
    """One immediate poll of a call: (outcome, payload), outcome in done|pending|expired|failed|unreachable.

    The order matters: a still-running call raises the *builtin* TimeoutError, while Modal's own
    TimeoutError family (OutputExpiredError, FunctionTimeoutError) does not subclass it.
    """
    from modal.exception import (
        AuthError,
        ConnectionError,
        FunctionTimeoutError,
        InternalFailure,
        OutputExpiredError,
        RemoteError,
    )

    try:
        return "done", function_call.get(timeout=0)
    except TimeoutError:
        return "pending", None
    except OutputExpiredError as e:
        return "expired", str(e)
    except FunctionTimeoutError as e:
        return "failed", f"the function hit its timeout (resources.timeout) on its last attempt: {e}"
    except (RemoteError, InternalFailure) as e:
        return "failed", _describe(e)
    except (AuthError, ConnectionError) as e:  # the collector cannot reach Modal; the run is untouched
        return "unreachable", _describe(e)
    except Exception as e:  # noqa: BLE001 - the remote function's own exception, re-raised here
        return "failed", _describe(e)


def collect(run_dir: Path, *, function_call_from_id: FunctionCallFromId | None = None,
            read_volume_file: Callable[[str, str], bytes] | None = None):
    """Advance a modal run's manifest by one poll; a run already finished is returned unchanged."""
    run_dir = Path(run_dir)
    manifest = _open_run(run_dir, "collect", "`megaspec collect` follows runs launched with `--target modal`")
    if manifest.is_terminal:
        return manifest
    function_call = _resolver(function_call_from_id)(manifest.modal.function_call_id)
    outcome, payload = poll(function_call)
    manifest = advance(manifest, manifest.state, last_polled_at=utc_now())
    if outcome == "done":
        manifest = store_receipt(run_dir, manifest, payload, source="the call's return value")
    elif outcome == "pending":
        manifest = _mark_progress(manifest, function_call)
    elif outcome == "expired":
        manifest = _collect_expired(run_dir, manifest, read_volume_file or _read_volume_file)
    elif outcome == "failed":
        manifest = advance(manifest, "error", error=ManifestError(stage="remote", message=str(payload)),
                           modal=_with_graph(manifest.modal, function_call))
    else:
        write_manifest(run_dir, manifest)
        raise BackendError(f"cannot reach Modal to poll `{manifest.modal.function_call_id}`: {payload}",
                           hint="Check `modal token info` and the network, then run `megaspec collect` again")
    write_manifest(run_dir, manifest)
    return manifest


def cancel(run_dir: Path, *, function_call_from_id: FunctionCallFromId | None = None):
    """Cancel a detached run and end its manifest `interrupted`; a finished run is returned unchanged.

    The containers are terminated too (`terminate_containers=True`): a cancelled input would
    otherwise keep its GPUs, billed, until the function notices. Cancelled calls are not retried.
    """
    from modal.exception import AuthError, ConnectionError, NotFoundError

    run_dir = Path(run_dir)
    manifest = _open_run(run_dir, "cancel", "A local run stops with Ctrl-C in the terminal running it (its receipt "
                                            "says `interrupted`)")
    if manifest.is_terminal:
        return manifest
    call_id = manifest.modal.function_call_id
    try:
        _resolver(function_call_from_id)(call_id).cancel(terminate_containers=True)
    except (AuthError, ConnectionError, NotFoundError) as e:
        raise BackendError(f"cannot cancel `{call_id}`: {_describe(e)}",
                           hint=f"Check `modal token info`; as a last resort, `modal app stop {manifest.modal.app_id}`"
                           ) from e
    note = f"cancelled with `megaspec cancel` at {utc_now()}; containers terminated, no retry"
    manifest = advance(manifest, "interrupted", notes=[*manifest.notes, note])
    write_manifest(run_dir, manifest)
    return manifest


def _open_run(run_dir: Path, verb: str, hint: str):
    """The run's manifest: finished (returned as is), or a detached Modal run `verb` can act on."""
    manifest = read_manifest(run_dir)
    if not manifest.is_terminal and (manifest.backend != "modal" or manifest.modal is None):
        raise BackendError(f"`{run_dir}` is a {manifest.backend} run in state `{manifest.state}`; nothing to {verb}",
                           hint=hint)
    return manifest


def _resolver(function_call_from_id: FunctionCallFromId | None) -> FunctionCallFromId:
    """The injected lookup (tests), else Modal's own, once credentials are known to exist."""
    if function_call_from_id is not None:
        return function_call_from_id
    require_credentials()
    return _modal_function_call_from_id


def _mark_progress(manifest, function_call):
    """Still pending: `running` once the call graph names a container, else still `detached`."""
    modal_call = _with_graph(manifest.modal, function_call)
    state = "running" if modal_call.task_id or manifest.state == "running" else "detached"
    return advance(manifest, state, modal=modal_call)


def _with_graph(modal_call: ModalCall, function_call) -> ModalCall:
    """Snapshot the call graph (best effort: statuses it cannot name read as PENDING)."""
    try:
        graph = function_call.get_call_graph()
    except Exception:  # noqa: BLE001 - the graph is triage context; losing it must not fail the collector
        return modal_call
    nodes = [{"function_name": str(n.function_name), "status": getattr(n.status, "name", str(n.status)),
              "task_id": str(n.task_id or "")} for n in _flatten(graph)]
    task_id = next((n["task_id"] for n in nodes if n["task_id"]), modal_call.task_id)
    return ModalCall.model_validate({**dict(modal_call), "call_graph": nodes, "task_id": task_id})


def _flatten(nodes) -> list:
    return [x for n in nodes for x in (n, *_flatten(getattr(n, "children", []) or []))]


def _collect_expired(run_dir: Path, manifest, read_volume_file):
    """After the retention window the receipt only lives where the function wrote it: its Volume."""
    local = run_dir / "receipt.json"
    if local.exists():
        return store_receipt(run_dir, manifest, local.read_text(encoding="utf-8"), source=f"`{local}`")
    volume, path = receipt_location(run_dir, manifest.run_id)
    how = (f"the call's result expired (Modal keeps results {RESULT_RETENTION_DAYS} days); its receipt is on "
           f"Volume `{volume}` at `{path}`")
    try:
        data = read_volume_file(volume, path)
    except Exception as e:  # noqa: BLE001 - tell the user how to fetch it by hand instead
        note = f"{how}; reading it failed ({_describe(e)}): run `modal volume get {volume} {path} {local}`, " \
               f"then `megaspec collect {run_dir}` again"
        return advance(manifest, manifest.state, notes=[*manifest.notes, note])
    manifest = advance(manifest, manifest.state, notes=[*manifest.notes, how + "; read from there"])
    return store_receipt(run_dir, manifest, data, source=f"Volume `{volume}`")


def receipt_location(run_dir: Path, run_id: str) -> tuple[str, str]:
    """(Volume name, path inside it) where the generated function writes this run's receipt."""
    from megaspec.runtime.plan import read_plan

    plan = read_plan(run_dir / "plan.json")
    runs_dir = plan.modal.runs_dir.rstrip("/")
    for volume in plan.modal.volumes:
        mount = volume.mount.rstrip("/")
        if runs_dir == mount or runs_dir.startswith(mount + "/"):
            inside = runs_dir[len(mount):].lstrip("/")
            return volume.name, "/".join(p for p in (inside, run_id, "receipt.json") if p)
    raise BackendError(f"the result expired and `{runs_dir}` is not on a Volume, so the receipt is gone",
                       hint="Add a `volumes.checkpoints` entry so receipts outlive Modal's result retention")


def _modal_function_call_from_id(call_id: str):
    import modal

    return modal.FunctionCall.from_id(call_id)


def _read_volume_file(volume: str, path: str) -> bytes:
    import modal

    return b"".join(modal.Volume.from_name(volume).read_file(path))


def _describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
