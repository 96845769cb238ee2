"""The local launcher's start, before the ranks: the fork server's socket lives in a folder of the temp
dir, and a TMPDIR too deep for a socket's path (108 bytes, as macOS's and some CI runners' are) failed
every local launch with an internal error (`OSError: AF_UNIX path too long`), leaving the run's manifest
`planned`. The server now starts with that folder in /tmp, and whatever else fails there ends the run
`error` with what failed."""

from __future__ import annotations

import subprocess
import sys

START = ("import tempfile\nfrom megaspec.runtime.launch import fork_server\n"
         "print(fork_server.start_fork_server(), fork_server.server_pid() is not None, tempfile.gettempdir())\n")


def test_a_temp_dir_too_deep_for_a_socket_still_starts_the_fork_server(tmp_path):
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    done = subprocess.run([sys.executable, "-c", START], env={"TMPDIR": str(deep), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["forkserver", "True", str(deep)]  # the user's TMPDIR is theirs again after


def test_a_launcher_that_fails_before_its_ranks_start_ends_the_run_error_saying_why(tmp_path, monkeypatch):
    """Stand-in: nothing real fails the fork server's start on this machine any more, so its start is made to
    raise; what is tested is the launcher around it (the manifest ended, never left `planned`)."""
    from megaspec.compiler.runs.backends import local
    from megaspec.compiler.runs.manifest import read_manifest
    from megaspec.runtime.launch import fork_server

    from .conftest import make_plan

    def broken() -> str:
        raise RuntimeError("no fork server today")

    monkeypatch.setattr(fork_server, "start_fork_server", broken)
    manifest = local.run(make_plan(1, steps=2, plan={"run": {"run_id": "r-start"}}), tmp_path / "run")
    assert manifest == read_manifest(tmp_path / "run") and manifest.state == "error"
    assert manifest.error.stage == "bootstrap" and "RuntimeError: no fork server today" in manifest.error.message
