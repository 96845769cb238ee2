"""Progress off a terminal is throttled by step and time: a 3,000-step run is not 3,000 lines."""

from __future__ import annotations

import io

from megaspec.compiler.runs.progress import PLAIN_INTERVAL_S, ProgressDisplay


class FakeClock:
    """A settable clock: the throttle's time rule is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def steps_printed(out: io.StringIO) -> list[int]:
    return [int(line.split()[1].split("/")[0]) for line in out.getvalue().splitlines() if line.startswith("step ")]


def test_fast_steps_print_the_first_the_last_and_each_tenth():
    out, clock = io.StringIO(), FakeClock()
    display = ProgressDisplay(3000, stream=out, live=False, clock=clock)
    for step in range(1, 3001):
        clock.now += 0.01
        display({"step": step, "loss": 1.0, "eta_s": 1})
    assert steps_printed(out) == [1, *range(300, 3001, 300)]


def test_a_quiet_stretch_prints_once_per_interval():
    out, clock = io.StringIO(), FakeClock()
    display = ProgressDisplay(3000, stream=out, live=False, clock=clock)
    for step in range(1, 200):
        clock.now += PLAIN_INTERVAL_S / 4
        display({"step": step})
    assert steps_printed(out) == list(range(1, 200, 4))  # 7.5 s a step: one line every 4 steps (30 s)


def test_phases_always_print_and_a_terminal_sees_every_step():
    out = io.StringIO()
    display = ProgressDisplay(3000, stream=out, live=False, clock=FakeClock())
    display({"step": 1})
    display({"step": 2})
    display({"phase": "checkpoint"})
    assert out.getvalue().splitlines() == ["step 1/3000  ETA --:--", "checkpoint"]
    live = io.StringIO()
    display = ProgressDisplay(3000, stream=live, live=True, clock=FakeClock())
    for step in (1, 2, 3):
        display({"step": step})
    assert live.getvalue().count("\r\x1b[K") == 3


def test_an_evaluation_always_prints_its_validation_loss():
    out, clock = io.StringIO(), FakeClock()
    display = ProgressDisplay(3000, stream=out, live=False, clock=clock)
    display({"step": 1, "loss": 2.0})
    display({"step": 2, "loss": 1.9})  # throttled
    display({"eval": {"step": 2, "loss": 1.85}})
    assert out.getvalue().splitlines() == ["step 1/3000  loss 2.0000  ETA --:--", "eval at step 2/3000  val loss 1.8500"]
