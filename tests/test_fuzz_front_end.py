"""Fuzz test of the front end (issue 11): real specs mutated at the text level (hostile fragments,
deletions, duplicated and swapped lines, odd characters) go through lint and, when clean, compile.
A failure is an MS9xx, an exception, a check over 5 s, or a diagnostic without a location or a hint.

The mutations are benchmarks/spec_fuzz.py's; there they run 100,000 times, here a bounded sample."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.spec_fuzz import BASES, CHARS, FRAGMENTS, OPS, check, mutate

FOLDER = Path(tempfile.mkdtemp(prefix="megaspec-fuzz-test-"))
TEXTS = [p.read_text(encoding="utf-8") for p in BASES]
OPERATIONS = st.lists(st.tuples(st.sampled_from(OPS), st.floats(0, 0.999), st.floats(0, 0.999),
                                st.integers(0, len(FRAGMENTS) * len(CHARS))), min_size=1, max_size=4)


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TEXTS), OPERATIONS)
def test_mutated_specs_lint_and_compile_without_internal_errors(text: str, ops: list) -> None:
    mutant = mutate(text, ops)
    assert check(mutant, FOLDER, build=True) == [], mutant


def test_every_fragment_alone_is_handled() -> None:
    """Each hostile fragment as a value of every line of one spec: the exhaustive corner of the sample."""
    text = TEXTS[0]
    num_lines = len(text.split("\n"))
    for choice in range(len(FRAGMENTS)):
        for line in range(0, num_lines, 7):
            mutant = mutate(text, [("value", line / num_lines, 0.0, choice)])
            assert check(mutant, FOLDER, build=False) == [], mutant
