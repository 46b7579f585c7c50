"""The RFID collapse window: repeats of one tag on one antenna become one read."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from gateway.tag_reads import TagRead, collapse_and_forget, collapse_reads


def test_repeats_within_the_window_collapse_per_antenna() -> None:
    reads = [
        TagRead(1000, "r1", 1, "AA"),
        TagRead(1400, "r1", 1, "AA"),  # repeat, dropped
        TagRead(1400, "r1", 2, "AA"),  # other antenna, kept
        TagRead(1999, "r1", 1, "AA"),  # still within 1000 ms of 1000, dropped
        TagRead(2000, "r1", 1, "AA"),  # window over, kept
        TagRead(2100, "r1", 1, "BB"),
    ]
    memory: dict[tuple[str, int, str], int] = {}
    kept = collapse_reads(reads, window_ms=1000, last_kept=memory)
    assert [(r.t_ms, r.antenna, r.epc) for r in kept] == [
        (1000, 1, "AA"),
        (1400, 2, "AA"),
        (2000, 1, "AA"),
        (2100, 1, "BB"),
    ]
    # memory carries across calls
    assert collapse_reads([TagRead(2500, "r1", 1, "AA")], window_ms=1000, last_kept=memory) == []


@given(
    st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 1), st.sampled_from("AB")), max_size=40)
)
def test_collapsed_reads_are_at_least_a_window_apart(raw: list[tuple[int, int, str]]) -> None:
    reads = [TagRead(t, "r", a, e) for t, a, e in sorted(raw)]
    kept = collapse_reads(reads, window_ms=700, last_kept={})
    keys = {(r.antenna, r.epc) for r in reads}
    assert keys == {(r.antenna, r.epc) for r in kept}  # every tag seen is reported
    for key in keys:
        times = [r.t_ms for r in kept if (r.antenna, r.epc) == key]
        assert all(b - a >= 700 for a, b in itertools.pairwise(times))


def test_memory_is_bounded_on_the_readers_time_axis_whatever_its_clock() -> None:
    """A reader whose clock is a day behind still has its repeats collapsed, and tags gone
    for longer than the horizon are forgotten."""
    day = 86_400_000
    memory: dict[tuple[str, int, str], int] = {}
    t0 = 1_700_000_000_000 - day  # the reader's clock, a day behind anyone's
    first = collapse_and_forget(
        [TagRead(t0, "r", 1, "AA"), TagRead(t0, "r", 1, "BB")], window_ms=5000, last_kept=memory
    )
    assert len(first) == 2
    again = collapse_and_forget(
        [TagRead(t0 + 1000, "r", 1, "AA")], window_ms=5000, last_kept=memory
    )
    assert again == []  # a repeat within the window, even though "now" is a day later
    later = t0 + 200_000  # beyond 2 windows + 60 s: BB (not seen since t0) is forgotten
    collapse_and_forget([TagRead(later, "r", 1, "AA")], window_ms=5000, last_kept=memory)
    assert set(memory) == {("r", 1, "AA")}
