"""The gateway's go-back-N window and backoff: exact numbers with injected times."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.flow import Backoff, SendWindow


def window(first: int = 1) -> SendWindow:
    return SendWindow.starting_at(first, resend_after_s=10, max_unconfirmed=100)


def test_pauses_when_too_much_is_unconfirmed() -> None:
    w = window()
    assert w.room() == 100
    w.sent(60, now=0)
    assert w.room() == 40
    w.sent(100, now=1)
    assert w.room() == 0
    assert w.acked(50, now=2)
    assert w.room() == 50


def test_goes_back_to_watermark_after_the_timeout_only() -> None:
    w = window()
    w.sent(30, now=100)
    assert w.deadline() == 110
    assert not w.expire(now=109.9)
    assert w.next_seq == 31
    assert w.acked(10, now=105)  # progress restarts the clock
    assert not w.expire(now=114)
    assert w.expire(now=115)
    assert w.next_seq == 11  # re-send from committed + 1


def test_old_or_repeated_watermark_is_ignored() -> None:
    w = window()
    w.sent(20, now=0)
    assert w.acked(20, now=1)
    assert not w.acked(20, now=2)
    assert not w.acked(5, now=3)
    assert w.committed == 20
    assert w.deadline() is None  # nothing waits once all is confirmed


def test_watermark_ahead_of_what_we_sent_moves_next_seq() -> None:
    # after a restart the retained watermark may already cover what the outbox re-sends
    w = window(first=11)
    assert w.acked(40, now=0)
    assert w.next_seq == 41


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 50)), max_size=60))
def test_invariants_hold_for_any_sequence_of_events(events: list[tuple[bool, int]]) -> None:
    w = window()
    now = 0.0
    last_sent = 0
    for is_send, n in events:
        now += 1
        if is_send:
            last_sent = w.next_seq - 1 + min(n, w.room())
            w.sent(last_sent, now)
        else:
            w.acked(min(w.committed + n, last_sent), now)
        w.expire(now)
        assert w.committed <= w.next_seq - 1
        assert 0 <= w.unconfirmed <= w.max_unconfirmed


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(initial=1, cap=10)
    assert [b.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    b.reset()
    assert b.next_delay() == 1


def test_backoff_survives_a_long_outage() -> None:
    b = Backoff(initial=0.5, cap=30)
    for _ in range(10_000):
        delay = b.next_delay()
    assert delay == 30


def test_backoff_jitter_only_shortens() -> None:
    b = Backoff(initial=4, cap=4, jitter=0.5, rand=lambda: 1.0)
    assert b.next_delay() == 2.0


@pytest.mark.parametrize(("initial", "cap", "jitter"), [(0, 1, 0), (2, 1, 0), (1, 2, 1.0)])
def test_backoff_rejects_bad_settings(initial: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match=r"need|jitter"):
        Backoff(initial=initial, cap=cap, jitter=jitter)
