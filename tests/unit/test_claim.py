"""Claims across real processes: a second claimant is refused with the holder's pid; a SIGKILLed
holder's claim ends with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from megaspec.runtime.contract.claim import Claimed, claim, holder_of

HOLD = """
import sys, time
from megaspec.runtime.contract.claim import claim
with claim(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_claimant_is_refused_and_a_killed_holder_releases(tmp_path):
    lock = tmp_path / "run.lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"  # an event, not a timer
        assert holder_of(lock) == proc.pid
        with pytest.raises(Claimed) as refused:
            with claim(lock):
                pass
        assert refused.value.holder == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert holder_of(lock) is None
        with claim(lock):
            assert holder_of(lock) == os.getpid()
    finally:
        proc.kill()
        proc.wait()


def test_a_claim_is_not_taken_through_a_link(tmp_path):
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "run.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        with claim(tmp_path / "run.lock"):
            pass
