"""The real `modal` client against Modal's own client test server (`../shared/modal-mock/server.py`).

One server per test session, in this virtualenv, on 127.0.0.1. Each test gets the client pointed
at it (MODAL_SERVER_URL, the mock's tokens, a temp HOME so no real ~/.modal.toml is read), a fresh
Modal client, and no control files left by an earlier test. Control files steer what the server
answers (see the mock's README, and `knob_server.py` for the project's own knobs: an RPC failing with
a status, hanging, or the server dying on it): `mock.set("task_id", "ta-1")`, `mock.state()`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.modal.knob_server import KNOB_FILES

MOCK_DIR = REPO_ROOT.parent / "shared" / "modal-mock"
CONTROL_FILES = ("result.json", "result.pkl", "error.txt", "error_status", "task_id", "fail_create.txt",
                 "fail_disconnect.txt", "slow_map.txt", *KNOB_FILES)
TOKENS = {"MODAL_TOKEN_ID": "ak-mock", "MODAL_TOKEN_SECRET": "as-mock"}


class MockModal:
    """The running server: its URL and the control directory that steers it."""

    def __init__(self, ctrl: Path, url: str):
        self.ctrl, self.url = ctrl, url

    def set(self, name: str, text: str | bytes = "") -> None:
        assert name in CONTROL_FILES, name
        path = self.ctrl / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)

    def clear(self) -> None:
        for name in CONTROL_FILES:
            (self.ctrl / name).unlink(missing_ok=True)

    def state(self) -> dict:
        """The server's record of what it received (rewritten every 0.2 s: wait for one more write; the
        60 s only stops a dead server from hanging the test, a loaded machine writes well within it)."""
        path = self.ctrl / "state.json"
        before = path.stat().st_mtime_ns if path.exists() else 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not path.exists() or path.stat().st_mtime_ns == before):
            time.sleep(0.05)
        return json.loads(path.read_text())


def start_server(ctrl: Path) -> MockModal:
    """The server (with the project's knobs, `knob_server.py`) on a free port, once it listens."""
    log = (ctrl / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("knob_server.py")), "--ctrl", str(ctrl)],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    # the server writes the file, then its number: wait for a number (an empty read made
    # every client in the session point at `http://127.0.0.1:` and fail to connect)
    while not ((ctrl / "port").exists() and (ctrl / "port").read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            pytest.fail(f"the mock Modal server did not start:\n{(ctrl / 'server.log').read_text()}")
        time.sleep(0.05)
    server = MockModal(ctrl, f"http://127.0.0.1:{(ctrl / 'port').read_text().strip()}")
    server.process = proc
    return server


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def put_on_volume(volume: str, path: str, data: bytes) -> None:
    """`data` as the file `path` of the named Volume on the server (made if missing), through the client:
    what a container's commit would have left there. `path` has no leading `/` (the server lists by it)."""
    import io

    import modal

    with modal.Volume.from_name(volume, create_if_missing=True).batch_upload(force=True) as batch:
        batch.put_file(io.BytesIO(data), path)


@pytest.fixture(scope="session")
def modal_server(tmp_path_factory):
    if not (MOCK_DIR / "server.py").is_file():
        pytest.skip(f"Modal's mock server is not at {MOCK_DIR}: clone the shared folder beside the repo "
                    "(../shared/modal-mock) to run the real-client tests")
    server = start_server(tmp_path_factory.mktemp("modal-ctrl"))
    try:
        yield server
    finally:
        stop_server(server.process)


@pytest.fixture
def own_mock(monkeypatch, tmp_path):
    """A server of this test's own, for a test that stops it (the network lost) or lets a knob end it."""
    from modal.client import _Client

    if not (MOCK_DIR / "server.py").is_file():
        pytest.skip(f"Modal's mock server is not at {MOCK_DIR}")
    ctrl = tmp_path / "own-ctrl"
    ctrl.mkdir()
    server = start_server(ctrl)
    point_client_at(monkeypatch, server.url, tmp_path / "home")
    try:
        yield server
    finally:
        stop_server(server.process)
        _fresh_client(_Client)


def point_client_at(monkeypatch, url: str, home: Path, tokens: dict[str, str] = TOKENS) -> None:
    """The real client, configured only by this environment: no profile file, a fresh client object."""
    import modal.config
    from modal.client import _Client

    home.mkdir(parents=True, exist_ok=True)
    for key, value in {"MODAL_SERVER_URL": url, "HOME": str(home), **tokens}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(modal.config, "_user_config", {})
    _fresh_client(_Client)


def _fresh_client(client_class) -> None:
    # Modal caches one client per process (and a lock around making it); a test that changed the
    # server URL or the tokens needs a new one, and a connect left retrying must not hold the lock.
    client_class._client_from_env = None
    client_class._client_from_env_lock = None


@pytest.fixture
def mock(modal_server, monkeypatch, tmp_path):
    from modal.client import _Client

    if modal_server.process.poll() is not None:
        pytest.fail(f"the mock Modal server exited ({modal_server.process.returncode}); see {modal_server.ctrl}")
    modal_server.clear()
    point_client_at(monkeypatch, modal_server.url, tmp_path / "home")
    yield modal_server
    modal_server.clear()
    _fresh_client(_Client)
