"""`megaspec cache seed` on Modal: launch the generated one-GPU seeding app and wait for its seed.

The same launch as a run's (`modal.launch`: a bounded connect, the app imported from its file and
run detached under Modal's own output, its one function spawned with the plan JSON), then a wait
for the call's result, the seed's manifest. Detached, because a seed outlives a dropped laptop
connection: a Ctrl-C during the wait leaves it compiling on Modal and says how to follow or stop
it. No run manifest is written: a seed is not a run, and its receipt is `seed.json` on the Volume.
"""

from __future__ import annotations

import signal

from collections.abc import Callable
from pathlib import Path

from megaspec.runtime.contract.seed_file import SEED_FILE as SEED_MANIFEST

from ..interrupts import raising_signals, signal_name, signalled, signum_of
from ..manifest import BackendError
from .modal import Spawn, find_entrypoint, load_app_module, spawn_detached
from .modal_client import check_client_version, connect, describe, is_auth_error, is_lost_connection


def make_seed_on_modal(plan, app_py: Path, *, echo: Callable[[str], None] = print) -> dict:
    """Spawn the seeding app's function with `plan` and return the seed's manifest (a dict); a
    BackendError says what failed (the launch, the call) or that the wait was interrupted."""
    check_client_version(plan.modal.client_version)
    connect(echo)  # (no `--target local` to suggest: a seed for Modal is made on Modal)
    app, function = find_entrypoint(load_app_module(app_py))
    echo("building the image and creating the seeding app on Modal (Modal's own output follows)")
    spawn = spawn_detached(app, function, plan.to_json())
    if spawn.call_id is None:
        raise _launch_failed(spawn, _seed_at(plan))
    return _wait(spawn, echo, _seed_at(plan))


def _launch_failed(spawn: Spawn, seed_at: str) -> BackendError:
    app = f" app `{spawn.app_id}`" if spawn.app_id else ""
    if spawn.problem is None or isinstance(spawn.problem, KeyboardInterrupt):
        signum = signum_of(spawn.problem) if spawn.problem else signal.SIGINT
        stop = f"; stop what was started with `modal app stop {spawn.app_id}`" if spawn.app_id else ""
        return BackendError(f"the seeding launch was interrupted ({signal_name(signum)}) before the seed was "
                            f"started{stop}", hint="Run `megaspec cache seed SPEC` again", code=signalled(signum))
    if is_auth_error(spawn.problem):
        return BackendError(f"Modal rejected the credentials: {describe(spawn.problem)}", hint="Run `modal token new`")
    if is_lost_connection(spawn.problem):
        return BackendError(f"the connection to Modal was lost while launching the seed ({describe(spawn.problem)}); "
                            f"the seeding{app} may have started anyway", hint=_check_first(spawn.app_id, seed_at))
    return BackendError(f"the seeding app could not be launched: {describe(spawn.problem)}",
                        hint="Fix what the message says, then run `megaspec cache seed SPEC` again")


def _seed_at(plan) -> str:
    from megaspec.runtime.contract.seed_file import seed_path

    from ...codegen.seed_app import cache_volume

    return f"`{seed_path(plan)}` on Volume `{cache_volume(plan).name}`"


def _check_first(app_id: str | None, seed_at: str) -> str:
    """What to look at before seeding again: a detached seed outlives the connection, and a second one is
    paid for twice."""
    look = (f"`modal app logs {app_id}` shows whether it is compiling (`modal app stop {app_id}` stops it)"
            if app_id else "`modal app list` shows a seeding app that is still running")
    return (f"Before seeding again, check: {look}; the seed is ready when `{SEED_MANIFEST}` is in {seed_at}. "
            "Run `megaspec cache seed SPEC` again only if neither is so")


def _wait(call: Spawn, echo: Callable[[str], None], seed_at: str) -> dict:
    import modal

    try:  # from the first line that names the call: a signal from then on leaves the seed compiling
        with raising_signals():
            echo(f"seeding: {call.call_id}  {call.dashboard_url or ''}".rstrip())
            echo("waiting for the compile on Modal (Ctrl-C stops waiting, not the seeding)")
            result = modal.FunctionCall.from_id(call.call_id).get()
    except KeyboardInterrupt as e:
        raise BackendError(f"stopped waiting ({signal_name(signum_of(e))}); the seed is still being made on Modal "
                           f"(call {call.call_id})",
                           hint=f"It is ready when `{SEED_MANIFEST}` is in its folder; stop it with "
                                f"`modal app stop {call.app_id}`", code=signalled(signum_of(e))) from None
    except Exception as e:  # noqa: BLE001 - the remote error, a timeout or a lost connection, said in the user's terms
        if is_lost_connection(e):
            raise BackendError(f"the connection to Modal was lost while waiting ({describe(e)}); the seed may still "
                               f"be being made on Modal (call {call.call_id})", hint=_check_first(call.app_id, seed_at)) from e
        logs = f"`modal app logs {call.app_id}`" if call.app_id else "the call's dashboard page"
        raise BackendError(f"the seed was not made on Modal: {describe(e)}",
                           hint=f"Read its output with {logs}; fix what it says and run `megaspec cache seed "
                                "SPEC` again") from e
    if not isinstance(result, dict) or "key" not in result:
        raise BackendError(f"the seeding call returned no seed manifest ({type(result).__name__})",
                           hint="Run `megaspec cache seed SPEC` again with this megaspec's generated app")
    return result
