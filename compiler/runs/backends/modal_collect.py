"""Following a detached Modal run: one immediate poll (`collect`), or a stop (`cancel`).

`collect` polls `FunctionCall.from_id(id).get(timeout=0)` once, with the catch order from the
Modal client's own semantics, and advances the manifest. The call graph is only a snapshot for
triage (which container, which state); success is decided by `get()` and the receipt it returns,
never by the graph. `cancel` stops the call and its containers and ends the manifest
`interrupted`. Both expect `modal_client.connect()` to have run (the CLI connects once, then
polls many runs on the one client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from megaspec.runtime.contract.clock import seconds_between
from megaspec.runtime.contract.rundir import RECEIPT_FILE

from ..manifest import (
    BackendError,
    Manifest,
    ManifestError,
    ModalCall,
    advance,
    parse_receipt,
    read_manifest,
    store_receipt,
    store_receipt_file,
    update_manifest,
    utc_now,
)
from .modal_client import NoAnswer, T, describe, is_lost_connection, within
from .modal_volume import fetch_progress, volume_file_bytes, volume_path

RESULT_RETENTION_DAYS = 7  # Modal keeps spawn() results this long, then get() raises OutputExpiredError


def poll(function_call) -> tuple[str, object]:
    """One immediate poll of a call: (outcome, payload).

    outcome: done | pending | expired | failed | terminated | rejected | unreachable | elsewhere (Modal
    does not know the call, or refuses it, to this client's workspace/environment/profile). The order
    matters: a still-running call raises the *builtin* TimeoutError, while Modal's own TimeoutError
    family (OutputExpiredError, FunctionTimeoutError) does not subclass it.
    """
    from modal.exception import (
        AuthError,
        FunctionTimeoutError,
        InternalError,
        NotFoundError,
        OutputExpiredError,
        PermissionDeniedError,
        ResourceExhaustedError,
        ServiceError,
    )

    try:
        return "done", function_call.get(timeout=0)
    except TimeoutError:
        return "pending", None
    except OutputExpiredError as e:
        return "expired", str(e)
    except FunctionTimeoutError as e:
        return "failed", f"the function hit its timeout (resources.timeout) on its last attempt: {e}"
    except AuthError as e:
        return "rejected", describe(e)
    except (NotFoundError, PermissionDeniedError) as e:
        return "elsewhere", describe(e)
    except Exception as e:  # noqa: BLE001 - RemoteError, InternalFailure, the function's own exception, or transit
        status = _output_status(function_call)
        in_transit = is_lost_connection(e) or isinstance(e, (ServiceError, InternalError, ResourceExhaustedError))
        if status is None and in_transit:  # the poll failed, not the run: a blip must not end it
            return "unreachable", describe(e)
        return ("terminated" if status == "TERMINATED" else "failed"), describe(e)


def _output_status(function_call) -> str | None:
    """The status Modal gave the call's output (FAILURE, TERMINATED, ...); None when no output can be read.

    The client raises the same exception for a terminated input as for a failed one, and a
    function's own exception may be an OSError like a dropped connection; only the output's status
    tells them apart, and the public API shows it nowhere else in time (the call graph is best
    effort). This reads it through the client's own invocation (modal 1.6, checked at apply).
    """
    from modal._utils.async_utils import synchronizer
    from modal_proto import api_pb2

    async def outputs():
        return await function_call._invocation().pop_function_call_outputs(index=0, timeout=0,
                                                                           clear_on_success=False)

    try:
        response = synchronizer.create_blocking(outputs)()
    except Exception:  # noqa: BLE001 - no readable output: the caller decides from the exception alone
        return None
    if not response.outputs:
        return None
    return api_pb2.GenericResult.GenericStatus.Name(response.outputs[0].result.status).removeprefix("GENERIC_STATUS_")


def collect(run_dir: Path) -> Manifest:
    """Advance a modal run's manifest by one poll; a finished run is returned unchanged.

    The poll (and whatever else it takes from Modal) comes first; the manifest is then changed under
    the run's claim, from what is stored by then: a command that finished the run meanwhile (a cancel,
    another collect) wins, and its answer is kept. Modal unreachable or the token rejected: a
    BackendError, and the manifest is not touched.
    """
    run_dir = Path(run_dir)
    manifest = open_run(run_dir, "collect", "`megaspec collect` follows runs launched with `--target modal`")
    if manifest.is_terminal:
        return manifest
    call_id = manifest.modal.function_call_id
    decide = _answer(run_dir, manifest)

    def change(fresh: Manifest) -> Manifest:
        if fresh.is_terminal or fresh.modal is None or fresh.modal.function_call_id != call_id:
            return fresh  # decided by another command since this one read it
        return decide(advance(fresh, fresh.state, last_polled_at=utc_now()))

    return update_manifest(run_dir, change)


def _answer(run_dir: Path, manifest: Manifest) -> Callable[[Manifest], Manifest]:
    """Ask Modal about the run's call; what the answer makes of a manifest (applied later, under the claim)."""
    function_call = _function_call(manifest.modal.function_call_id)
    outcome, payload = poll(function_call)
    if outcome == "elsewhere":
        raise _elsewhere(manifest, payload)
    if outcome in ("rejected", "unreachable"):
        reason = "Modal rejected the credentials" if outcome == "rejected" else "could not reach Modal"
        raise BackendError(f"{reason} while polling `{manifest.modal.function_call_id}`: {payload}",
                           hint="Check `modal token info` and the network, then collect again; the run is untouched")
    if outcome == "done":
        return lambda m: store_receipt(run_dir, m, payload, source="the call's return value")
    if outcome == "expired":
        return _expired(run_dir, manifest)
    graph = _call_graph(function_call)
    if outcome == "pending":
        return lambda m: _mark_progress(m, graph)
    if outcome == "terminated":
        return lambda m: advance(m, "interrupted", modal=_with_graph(m.modal, graph),
                                 notes=[*m.notes, f"Modal terminated the call (stopped, not failed): {payload}"])
    return lambda m: advance(m, "error", error=ManifestError(stage="remote", message=str(payload)),
                             modal=_with_graph(m.modal, graph))


def _elsewhere(manifest: Manifest, answer: str) -> BackendError:
    """A call Modal says it does not know (or will not show) here: most likely asked from another workspace,
    environment or profile than the one that launched it. Nothing about the run is decided from that."""
    from .modal_client import identity

    launched, here = manifest.modal, ModalCall(**identity())
    return BackendError(
        f"Modal does not know call `{launched.function_call_id}` to this client ({answer}); it was launched from "
        f"{launched.launched_from()}, and this client is {here.launched_from()}; the run is unchanged",
        hint="Poll it with the profile that launched it (`modal profile activate PROFILE`, or MODAL_PROFILE and "
             "MODAL_ENVIRONMENT), then collect again")


@dataclass(frozen=True)
class Cancelled:
    """What `cancel` did: the manifest after it, whether the call was stopped (not already finished), and
    why the run's progress could not be copied from its Volume once it ended (None: copied, or it had
    ended before)."""

    manifest: Manifest
    stopped: bool
    progress_problem: str | None = None


def cancel(run_dir: Path) -> Cancelled:
    """Cancel a detached run and end its manifest `interrupted`; a finished run is returned unchanged.

    The run is collected first: a call that already finished keeps its receipt (cancelling it would
    throw the receipt away and say it was stopped). The containers are terminated too
    (`terminate_containers=True`): a cancelled input would otherwise keep its GPUs, billed, until the
    function notices. Cancelled calls are not retried. A run that ends here gets its progress.jsonl
    copied from its Volume once more (what it committed), so `report` draws its loss curve.
    """
    run_dir = Path(run_dir)
    manifest = open_run(run_dir, "cancel", "A local run stops with Ctrl-C in the terminal running it (its receipt "
                                           "says `interrupted`)")
    if manifest.is_terminal:
        return Cancelled(manifest, stopped=False)
    call_id = manifest.modal.function_call_id
    manifest = _within(manifest, f"the poll of `{call_id}` before cancelling it", lambda: collect(run_dir))
    stopped = not manifest.is_terminal
    if stopped:
        manifest = _stop(run_dir, manifest)
    return Cancelled(manifest, stopped, _last_progress(run_dir, manifest))


def _stop(run_dir: Path, manifest: Manifest) -> Manifest:
    """Cancel the run's call and its containers; the manifest ended `interrupted`."""
    from modal.exception import AuthError, ConnectionError, NotFoundError

    call_id = manifest.modal.function_call_id
    try:
        _within(manifest, f"the cancel of `{call_id}`",
                lambda: _function_call(call_id).cancel(terminate_containers=True))
    except (AuthError, ConnectionError, NotFoundError) as e:
        raise BackendError(f"cannot cancel `{call_id}`: {describe(e)}",
                           hint=f"Check `modal token info`; as a last resort, `modal app stop {manifest.modal.app_id}`"
                           ) from e
    note = f"cancelled with `megaspec cancel` at {utc_now()}; containers terminated, no retry"
    return update_manifest(run_dir, lambda m: m if m.is_terminal else advance(m, "interrupted",
                                                                              notes=[*m.notes, note]))


def _last_progress(run_dir: Path, manifest: Manifest) -> str | None:
    """The ended run's progress.jsonl copied from its Volume (`fetch_progress`, bounded); why not, or None."""
    try:
        return within("the read of the run's progress from its Volume", lambda: fetch_progress(run_dir, manifest))
    except NoAnswer as e:
        return str(e)


def _within(manifest: Manifest, what: str, request: Callable[[], T]) -> T:
    """A request of `cancel`, bounded (`modal_client.within`); on timeout the error says the run is unchanged."""
    try:
        return within(what, request)
    except NoAnswer as e:
        raise BackendError(f"{e}; the run is unchanged (state `{manifest.state}`), and may still be running",
                           hint=f"Check the network, then `megaspec cancel` it again; as a last resort, "
                                f"`modal app stop {manifest.modal.app_id}`") from None


def open_run(run_dir: Path, verb: str, hint: str) -> Manifest:
    """The run's manifest: finished (returned as is), or a spawned Modal run `verb` can act on."""
    manifest = read_manifest(run_dir)
    if manifest.is_terminal:
        return manifest
    if manifest.backend != "modal":
        raise BackendError(f"`{run_dir}` is a {manifest.backend} run in state `{manifest.state}`; nothing to {verb}",
                           hint=hint)
    if manifest.modal is None or manifest.modal.function_call_id is None:
        raise BackendError(f"`{run_dir}` was never spawned on Modal (state `{manifest.state}`); nothing to {verb}",
                           hint=f"Launch it with `megaspec apply {manifest.spec.path}`")
    return manifest


def stop_cut_off_launch(manifest: Manifest, echo: Callable[[str], None]) -> None:
    """Stop the app of a launch that was cut off (a signal, the network) before its call id was recorded,
    as `modal app stop` does: a call the spawn may have started there, megaspec knows nothing of, must not
    run on beside the run's next attempt. Nothing to do for a run whose call is known (it ended) or that
    never got an app. A BackendError when Modal does not answer or refuses."""
    modal_call = manifest.modal
    if modal_call is None or modal_call.app_id is None or modal_call.function_call_id is not None:
        return
    from modal._utils.async_utils import synchronizer
    from modal.client import _Client
    from modal_proto import api_pb2

    from .modal_client import connect

    async def stop() -> None:  # the client's own `modal app stop` request (modal 1.6, checked at apply)
        client = await _Client.from_env()
        await client._stub.AppStop(api_pb2.AppStopRequest(app_id=modal_call.app_id,
                                                          source=api_pb2.APP_STOP_SOURCE_PYTHON_CLIENT))

    connect(echo, launching=True)
    echo(f"stopping app `{modal_call.app_id}` of {manifest.name}'s cut-off launch (its call was never recorded)")
    try:
        within(f"the stop of app `{modal_call.app_id}`", synchronizer.create_blocking(stop))
    except Exception as e:  # noqa: BLE001 - NoAnswer is a BackendError already; any other refusal becomes one
        if isinstance(e, BackendError):
            raise
        raise BackendError(f"cannot stop app `{modal_call.app_id}`: {describe(e)}",
                           hint=f"`modal app stop {modal_call.app_id}`, then resume again") from e


def _function_call(call_id: str):
    import modal

    return modal.FunctionCall.from_id(call_id)


def _mark_progress(manifest: Manifest, graph: list[dict[str, str]] | None) -> Manifest:
    """Still pending: `running` once the call graph names a container, else still `detached`."""
    modal_call = _with_graph(manifest.modal, graph)
    state = "running" if modal_call.task_id or manifest.state == "running" else "detached"
    return advance(manifest, state, modal=modal_call)


def _call_graph(function_call) -> list[dict[str, str]] | None:
    """The call graph's nodes (best effort: statuses it cannot name read as PENDING); None when unreadable."""
    try:
        graph = function_call.get_call_graph()
    except Exception:  # noqa: BLE001 - the graph is triage context; losing it must not fail the collector
        return None
    return [{"function_name": str(n.function_name), "status": getattr(n.status, "name", str(n.status)),
             "task_id": str(n.task_id or "")} for n in _flatten(graph)]


def _with_graph(modal_call: ModalCall, nodes: list[dict[str, str]] | None) -> ModalCall:
    if nodes is None:
        return modal_call
    task_id = next((n["task_id"] for n in nodes if n["task_id"]), modal_call.task_id)
    return ModalCall.model_validate({**dict(modal_call), "call_graph": nodes, "task_id": task_id})


def _flatten(nodes) -> list:
    return [x for n in nodes for x in (n, *_flatten(getattr(n, "children", []) or []))]


def _expired(run_dir: Path, manifest: Manifest) -> Callable[[Manifest], Manifest]:
    """After the retention window the receipt only lives where the function wrote it: its Volume.

    Modal keeps results for days, so "expired" for a call spawned less than that ago is not the
    truth (another workspace, a server that lost track): the receipt is taken from the Volume when it
    is there, and otherwise the run is left as it is, with a note."""
    local = run_dir / RECEIPT_FILE
    if local.exists():
        return lambda m: store_receipt_file(run_dir, m, local)
    age_days = seconds_between(manifest.transitions[0].at, utc_now()) / 86400
    trusted = age_days >= RESULT_RETENTION_DAYS
    gone = (f"the call's result expired (Modal keeps results {RESULT_RETENTION_DAYS} days)" if trusted else
            f"Modal answered that the call's result expired, but the run was launched {age_days * 24:.1f} h ago "
            f"and Modal keeps results {RESULT_RETENTION_DAYS} days: not trusted, the run is unchanged")
    location = volume_path(run_dir, RECEIPT_FILE)
    if location is None:
        if not trusted:
            return lambda m: _noted(m, gone + "; collect it again later")
        return lambda m: advance(m, "error", error=ManifestError(
            stage="persistence", message=f"{gone} and the function wrote its receipt inside the container, not on a "
                                         "Volume, so it is gone; add a `volumes.checkpoints` entry so receipts "
                                         "outlive the retention"))
    volume, path = location
    how = f"{gone}; its receipt is on Volume `{volume}` at `{path}`" if trusted else \
        f"{gone}; its receipt goes to Volume `{volume}` at `{path}`"
    try:
        data = volume_file_bytes(volume, path, "receipt")
    except Exception as e:  # noqa: BLE001 - tell the user how to fetch it by hand instead
        note = f"{how}; reading it failed ({describe(e)}): run `modal volume get {volume} {path} {local}`, " \
               f"then `megaspec collect {run_dir}` again"
        return lambda m: _noted(m, note)
    if _earlier_attempts(run_dir, manifest, data):  # the folder is reused: its receipt may predate this attempt
        earlier = f"{how}, but the one there is an earlier attempt's (started before this attempt was queued)"
        if not trusted:
            return lambda m: _noted(m, earlier + "; collect it again later")
        return lambda m: advance(m, "error", error=ManifestError(
            stage="persistence", message=f"{earlier}: this attempt left none there"))
    return lambda m: store_receipt(run_dir, _noted(m, how + "; read from there"), data, source=f"Volume `{volume}`")


def _earlier_attempts(run_dir: Path, manifest: Manifest, data: bytes) -> bool:
    """Whether a receipt read from the Volume is an earlier attempt's, for a run done again in its folder
    (`attempts/`): it started before this attempt was queued. A receipt that does not parse is judged
    by `store_receipt`, which says what is wrong with it."""
    from megaspec.runtime.contract.clock import parse_utc
    from megaspec.runtime.contract.rundir import archived_attempts

    if not archived_attempts(run_dir):
        return False
    try:
        started = parse_receipt(data).started_at
    except ValueError:
        return False
    return parse_utc(started) < parse_utc(manifest.transitions[0].at)


def _noted(manifest: Manifest, note: str) -> Manifest:
    return advance(manifest, manifest.state, notes=[*manifest.notes, note])
