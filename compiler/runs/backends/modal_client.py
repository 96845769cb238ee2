"""Reaching Modal: the client installed, the version the generated code targets, credentials, a bounded connect.

Every verb that talks to Modal (apply, collect, cancel, status, logs) goes through `connect()`
first. The Modal client retries an unreachable server for about a minute, silently; `connect()`
bounds that to `CONNECT_TIMEOUT_S`, says that it is connecting when it takes longer than a moment,
and tells a rejected token apart from an unreachable server. The connected client is Modal's
per-process client (`Client.from_env()`), so every later call reuses its channel.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

from ...codes import EXIT_USAGE
from ..manifest import BackendError

T = TypeVar("T")

CONNECT_TIMEOUT_S = 15.0  # the client's own retries last ~63 s, in silence
ANSWER_TIMEOUT_S = 20.0  # one answer once connected (a poll, a cancel): a request takes milliseconds
_QUIET_S = 1.0  # a connect slower than this is announced


def import_modal(*, launching: bool = False) -> ModuleType:
    """The `modal` package, or a usage error naming the extra that installs it (and, for `apply`, the
    CPU rehearsal that needs none)."""
    try:
        import modal
    except ImportError as e:
        rehearse = ", or run on this machine with `--target local`" if launching else ""
        raise BackendError("the Modal backend needs the `modal` client, which is not installed here",
                           hint=f"pip install 'megaspec[modal]' (modal==1.6.4){rehearse}", code=EXIT_USAGE) from e
    except Exception as e:
        raise _config_error(e) from None
    # The client's tasks that megaspec gave up on (a poll past its bound, a connection lost, a Ctrl-C)
    # end at exit with ClientClosed or the lost connection, which asyncio and the client's event-loop
    # thread log as tracebacks ("Task exception was never retrieved", "unhandled exception during
    # asyncio.run() shutdown", "Synchronizer thread unexpectedly died"): by then the command has said
    # what happened, in the user's terms.
    for noisy in ("asyncio", "synchronicity"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    return modal


def _config_error(error: Exception) -> Exception:
    """The client reads its configuration file on import; a broken one is a usage error naming the file
    (any other failure is returned as it is)."""
    exceptions = sys.modules.get("modal.exception")
    path = os.environ.get("MODAL_CONFIG_PATH") or os.path.join(os.path.expanduser("~"), ".modal.toml")
    if exceptions is None or not isinstance(error, exceptions.InvalidError) or not os.path.isfile(path):
        return error
    problem = str(error).strip().splitlines()[-1]
    return BackendError(f"cannot read the Modal configuration file `{path}`: {problem}",
                        hint="Fix it (TOML: one [table] per profile, as `modal token new` writes it), or move it "
                             "away and run `modal token new`", code=EXIT_USAGE)


def check_client_version(targeted: str, *, launching: bool = False) -> None:
    """Refuse a `modal` client of another minor version than the one the generated code was written for."""
    installed = import_modal(launching=launching).__version__
    if ".".join(installed.split(".")[:2]) != targeted:
        raise BackendError(f"the generated app targets modal {targeted}.x, but modal {installed} is installed",
                           hint=f"pip install 'megaspec[modal]' to get modal {targeted}.x, then apply again",
                           code=EXIT_USAGE)


def require_credentials(*, launching: bool = False) -> None:
    """Fail before any network call when no Modal token is configured (env or ~/.modal.toml)."""
    from modal.config import config

    if not (config.get("token_id") and config.get("token_secret")):
        rehearse = ", or rehearse on this machine with `--target local`" if launching else ""
        raise BackendError("Modal credentials not found: this needs a Modal token",
                           hint=f"Run `modal token new` (or set MODAL_TOKEN_ID and MODAL_TOKEN_SECRET){rehearse}")


def connect(echo: Callable[[str], None], *, launching: bool = False, timeout_s: float | None = None):
    """Modal's client, connected and its token accepted, within `timeout_s`; else a BackendError."""
    import_modal(launching=launching)
    require_credentials(launching=launching)
    from modal.config import config

    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    outcome: dict = {}
    # A daemon thread: on timeout the client keeps retrying in the background, and must not hold the exit.
    worker = threading.Thread(target=_hello, args=(outcome,), daemon=True, name="megaspec-modal-connect")
    worker.start()
    worker.join(min(_QUIET_S, timeout_s))
    if worker.is_alive():
        echo(f"connecting to Modal at {config.get('server_url')} (up to {timeout_s:g} s)...")
        worker.join(max(timeout_s - _QUIET_S, 0.0))
    if "client" in outcome:
        return outcome["client"]
    problem = outcome.get("error")
    if problem is not None and is_auth_error(problem):
        raise BackendError(f"Modal rejected the credentials: {describe(problem)}",
                           hint="Run `modal token new` (or check MODAL_TOKEN_ID and MODAL_TOKEN_SECRET)")
    why = f" ({describe(problem)})" if problem is not None else f" within {timeout_s:g} s"
    raise BackendError(f"could not reach Modal at {config.get('server_url')}{why}",
                       hint="Check the network (and MODAL_SERVER_URL if set), then run the command again; "
                            "nothing was changed")


class NoAnswer(BackendError):
    """Modal took the request and did not answer in time: its fate is unknown, not failed."""


def within(what: str, request: Callable[[], T], *, timeout_s: float | None = None) -> T:
    """`request()`'s answer, or its exception, within `timeout_s`; else a BackendError saying what was
    waited for (NoAnswer). The request runs in a daemon thread that is left behind on timeout: a hung RPC cannot
    be taken back from here, and must not hold the process's exit."""
    timeout_s = ANSWER_TIMEOUT_S if timeout_s is None else timeout_s
    outcome: dict = {}

    def ask() -> None:
        try:
            outcome["answer"] = request()
        except BaseException as e:  # noqa: BLE001 - raised again below, in the caller's thread
            outcome["error"] = e

    worker = threading.Thread(target=ask, daemon=True, name="megaspec-modal-request")
    worker.start()
    worker.join(timeout_s)
    if "error" in outcome:
        raise outcome["error"]
    if "answer" not in outcome:
        raise NoAnswer(f"Modal did not answer {what} within {timeout_s:g} s",
                       hint="Check the network, then run the command again")
    return outcome["answer"]


def identity() -> dict[str, str | None]:
    """The Modal workspace, environment and profile this client acts as (None where not known: the
    workspace is asked of Modal, within a bound, and a failure leaves it unknown)."""
    import modal.config
    from modal._utils.async_utils import synchronizer
    from modal_proto import api_pb2

    async def token_info():
        client = await modal.client._Client.from_env()
        return await client._stub.TokenInfoGet(api_pb2.TokenInfoGetRequest())  # as `modal token info` asks

    try:
        workspace = within("which workspace the token belongs to",
                           synchronizer.create_blocking(token_info)).workspace_name or None
    except Exception:  # noqa: BLE001 - unknown is said as unknown
        workspace = None
    config = modal.config.config
    return {"workspace": workspace, "environment": config.get("environment") or None,
            "profile": modal.config._profile or None}


def _hello(outcome: dict) -> None:
    import modal

    try:
        client = modal.Client.from_env()
        client.hello()
        outcome["client"] = client
    except Exception as e:  # noqa: BLE001 - classified by connect()
        outcome["error"] = e


def is_auth_error(error: BaseException | None) -> bool:
    from modal.exception import AuthError

    return isinstance(error, AuthError)


def is_lost_connection(error: BaseException | None) -> bool:
    """The connection to Modal failed (dropped, refused, reset): the request's fate is unknown, not failed."""
    from grpclib.exceptions import StreamTerminatedError
    from modal.exception import ConnectionError

    return isinstance(error, (ConnectionError, StreamTerminatedError, OSError))


def describe(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
