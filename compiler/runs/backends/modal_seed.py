"""`megaspec cache seed` on Modal: launch the generated one-GPU seeding app and wait for its seed.

The same launch as a run's (`modal.launch`: a bounded connect, the app imported from its file and
run detached under Modal's own output, its one function spawned with the plan JSON), then a wait
for the call's result, the seed's manifest. Detached, because a seed outlives a dropped laptop
connection: a Ctrl-C during the wait leaves it compiling on Modal and says how to follow or stop
it. No run manifest is written: a seed is not a run, and its receipt is `seed.json` on the Volume.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...codes import EXIT_INTERRUPTED
from ..manifest import BackendError
from .modal import Spawn, find_entrypoint, load_app_module, spawn_detached
from .modal_client import check_client_version, connect, describe, is_auth_error


def make_seed_on_modal(plan, app_py: Path, *, echo: Callable[[str], None] = print) -> dict:
    """Spawn the seeding app's function with `plan` and return the seed's manifest (a dict); a
    BackendError says what failed (the launch, the call) or that the wait was interrupted."""
    check_client_version(plan.modal.client_version)
    connect(echo)  # (no `--target local` to suggest: a seed for Modal is made on Modal)
    app, function = find_entrypoint(load_app_module(app_py))
    echo("building the image and creating the seeding app on Modal (Modal's own output follows)")
    spawn = spawn_detached(app, function, plan.to_json())
    if spawn.call_id is None:
        raise _launch_failed(spawn)
    return _wait(spawn, echo)


def _launch_failed(spawn: Spawn) -> BackendError:
    if spawn.problem is None:
        stop = f"; stop what was started with `modal app stop {spawn.app_id}`" if spawn.app_id else ""
        return BackendError(f"the seeding launch was interrupted (Ctrl-C) before the seed was started{stop}",
                            hint="Run `megaspec cache seed SPEC` again", code=EXIT_INTERRUPTED)
    if is_auth_error(spawn.problem):
        return BackendError(f"Modal rejected the credentials: {describe(spawn.problem)}", hint="Run `modal token new`")
    return BackendError(f"the seeding app could not be launched: {describe(spawn.problem)}",
                        hint="Fix what the message says, then run `megaspec cache seed SPEC` again")


def _wait(call: Spawn, echo: Callable[[str], None]) -> dict:
    import modal

    try:  # from the first line that names the call: a Ctrl-C from then on leaves the seed compiling
        echo(f"seeding: {call.call_id}  {call.dashboard_url or ''}".rstrip())
        echo("waiting for the compile on Modal (Ctrl-C stops waiting, not the seeding)")
        result = modal.FunctionCall.from_id(call.call_id).get()
    except KeyboardInterrupt:
        raise BackendError(f"stopped waiting; the seed is still being made on Modal (call {call.call_id})",
                           hint=f"It is ready when `seed.json` is in its folder; stop it with "
                                f"`modal app stop {call.app_id}`", code=EXIT_INTERRUPTED) from None
    except Exception as e:  # noqa: BLE001 - the remote error, a timeout or a lost connection, said in the user's terms
        logs = f"`modal app logs {call.app_id}`" if call.app_id else "the call's dashboard page"
        raise BackendError(f"the seed was not made on Modal: {describe(e)}",
                           hint=f"Read its output with {logs}; fix what it says and run `megaspec cache seed "
                                "SPEC` again") from e
    if not isinstance(result, dict) or "key" not in result:
        raise BackendError(f"the seeding call returned no seed manifest ({type(result).__name__})",
                           hint="Run `megaspec cache seed SPEC` again with this megaspec's generated app")
    return result
