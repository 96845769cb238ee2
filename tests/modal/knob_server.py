"""Modal's test server (`../shared/modal-mock/server.py`) with the failure knobs the lifecycle tests need.

The shared server steers outcomes (a result, a failure, a slow spawn); these knobs steer the
transport, per RPC name, from more files in the same control directory (read on every RPC):

| file | effect |
|---|---|
| `rpc_status.json` | `{"RpcName": ["NOT_FOUND", "message"]}`: that RPC fails with the gRPC status |
| `rpc_hang.txt` | RPC names, one a line (`*`: every RPC): received, never answered |
| `rpc_die.txt` | RPC names: the server process exits when one arrives (a connection lost mid-RPC) |
| `finished_calls.txt` | call ids, one a line: only those finish (result/error files); the rest stay pending |

Run as `python tests/modal/knob_server.py --ctrl DIR`, like the shared server.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
from pathlib import Path

SHARED_SERVER = Path(__file__).resolve().parents[2].parent / "shared" / "modal-mock" / "server.py"
KNOB_FILES = ("rpc_status.json", "rpc_hang.txt", "rpc_die.txt", "finished_calls.txt")


def _lines(path: Path) -> set[str]:
    return set(path.read_text().split()) if path.exists() else set()


def with_knobs(servicer_class, ctrl: Path):
    """The servicer class, each of its RPC handlers wrapped by the knobs read from `ctrl`."""
    from grpclib import GRPCError, Status
    from grpclib.const import Handler

    async def knob(name: str) -> None:
        if name in _lines(ctrl / "rpc_die.txt"):
            os._exit(0)  # no goodbye: the client sees the connection drop mid-call
        hang = _lines(ctrl / "rpc_hang.txt")
        if name in hang or "*" in hang:
            await asyncio.Event().wait()
        status_file = ctrl / "rpc_status.json"
        failing = json.loads(status_file.read_text()) if status_file.exists() else {}
        if name in failing:
            status, message = failing[name]
            raise GRPCError(Status[status], message)

    def only_finished(servicer, stream) -> None:
        finished, receive = ctrl / "finished_calls.txt", stream.recv_message

        async def recv():
            request = await receive()
            if finished.exists() and request.function_call_id not in _lines(finished):
                servicer.function_is_running = True
            return request

        stream.recv_message = recv

    class Knobbed(servicer_class):
        def __mapping__(self):
            def wrap(name, handler):
                async def func(stream):
                    await knob(name)
                    if name == "FunctionGetOutputs":
                        only_finished(self, stream)
                    return await handler.func(stream)

                return Handler(func, handler.cardinality, handler.request_type, handler.reply_type)

            return {path: wrap(path.rsplit("/", 1)[-1], h) for path, h in super().__mapping__().items()}

    return Knobbed


def main() -> None:
    spec = importlib.util.spec_from_file_location("modal_mock_server", SHARED_SERVER)
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    ctrl = Path(sys.argv[sys.argv.index("--ctrl") + 1])
    load_conftest = server.load_conftest

    def knobbed_conftest():
        conftest = load_conftest()
        conftest.MockClientServicer = with_knobs(conftest.MockClientServicer, ctrl)
        return conftest

    server.load_conftest = knobbed_conftest
    asyncio.run(server.main(0, ctrl))


if __name__ == "__main__":
    main()
