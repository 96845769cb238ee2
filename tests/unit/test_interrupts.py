"""`interrupts.held_signals`: a signal that arrives while a few writes must land together waits for them."""

from __future__ import annotations

import os
import signal

import pytest

from megaspec.compiler.runs.interrupts import Signalled, held_signals, raising_signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_the_block_is_raised_once_it_has_ended(signum):
    done = []
    with pytest.raises(Signalled) as caught, raising_signals():
        with held_signals():
            os.kill(os.getpid(), signum)  # delivered now, to the holding handler
            done.append("first write")
            done.append("second write")
        done.append("after the block")
    assert done == ["first write", "second write"] and caught.value.signum == signum


def test_without_a_signal_nothing_is_raised_and_the_handlers_are_back():
    before = signal.getsignal(signal.SIGTERM)
    with held_signals():
        pass
    assert signal.getsignal(signal.SIGTERM) is before
