"""Every command, not only `apply`, ends on Ctrl-C, SIGTERM and SIGHUP alike: one line naming the signal,
exit 128 + it, no traceback. `status --watch` of a running local run is a command that waits; before,
SIGTERM and SIGHUP killed it where it stood (exit -15, whatever it was writing left behind)."""

from __future__ import annotations

import signal
import subprocess

import pytest

from megaspec.compiler.runs import manifest as mf
from megaspec.compiler.runs.local_process import this_process
from tests.conftest import MEGASPEC
from tests.unit.test_manifest import make_manifest


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP"),
                                                   (signal.SIGINT, 130, "Ctrl-C")])
def test_a_waiting_command_ends_on_any_stop_signal_with_128_plus_it(tmp_path, sig, code, name):
    run_dir = tmp_path / "runs" / "r1"
    mf.write_manifest(run_dir, mf.advance(make_manifest("planned", "local"), "running", process=this_process()))
    watch = subprocess.Popen([*MEGASPEC, "status", str(tmp_path / "runs"), "--watch"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        first = watch.stdout.readline()  # the table has been printed: the command now waits for the next refresh
        assert first.startswith("RUN"), first + watch.stderr.read()
        watch.send_signal(sig)
        out, err = watch.communicate(timeout=60)
    finally:
        watch.kill()
    assert watch.returncode == code, err
    assert f"Aborted ({name})." in err and "Traceback" not in err + out
