"""The intake between paho's network thread and the worker is bounded by messages and bytes."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from ingest.intake import Intake
from ingest.plan import Received


def m(size: int = 10, qos: int = 1, mid: int = 1) -> Received:
    return Received("ct/v1/p/g/readings", b"x" * size, mid, qos, 1)


def put_in_thread(intake: Intake, msg: Received) -> tuple[threading.Thread, list[bool]]:
    out: list[bool] = []
    t = threading.Thread(target=lambda: out.append(intake.put(msg)), daemon=True)
    t.start()
    return t, out


def test_qos0_uses_half_the_message_limit_then_is_dropped_and_counted() -> None:
    dropped: list[Received] = []
    intake = Intake(max_messages=10, max_bytes=10**6, on_drop=dropped.append)
    results = [intake.put(m(qos=0, mid=i)) for i in range(100)]
    assert results == [True] * 5 + [False] * 95
    assert (len(intake), intake.taken, intake.dropped, len(dropped)) == (5, 5, 95, 95)
    # QoS 1 still has the other half
    assert all(intake.put(m(qos=1)) for _ in range(5))
    assert len(intake) == 10


def test_qos0_uses_half_the_byte_limit() -> None:
    intake = Intake(max_messages=1000, max_bytes=1000)
    taken = sum(intake.put(m(size=100, qos=0)) for _ in range(50))
    assert taken == 5
    assert intake.bytes == 500


def test_qos1_waits_for_room_and_is_never_dropped() -> None:
    intake = Intake(max_messages=2, max_bytes=10**6)
    assert intake.put(m(mid=1))
    assert intake.put(m(mid=2))
    t, out = put_in_thread(intake, m(mid=3))
    time.sleep(0.3)
    assert t.is_alive(), "a third QoS 1 message must wait for room"
    assert [intake.get(timeout=1).mid for _ in range(1)] == [1]
    t.join(2)
    assert out == [True]
    assert [intake.get_nowait().mid for _ in range(2)] == [2, 3]
    assert intake.empty()


def test_qos1_waits_on_bytes_too() -> None:
    intake = Intake(max_messages=100, max_bytes=100)
    assert intake.put(m(size=60))
    t, out = put_in_thread(intake, m(size=60))
    time.sleep(0.3)
    assert t.is_alive()
    intake.get(timeout=1)
    t.join(2)
    assert out == [True]
    assert intake.bytes == 60


def test_a_message_larger_than_the_limit_passes_alone() -> None:
    intake = Intake(max_messages=10, max_bytes=100)
    assert intake.put(m(size=5000))
    assert intake.bytes == 5000
    assert not intake.put(m(size=1, qos=0))


def test_close_releases_a_waiting_put_without_taking_it() -> None:
    intake = Intake(max_messages=1, max_bytes=100)
    intake.put(m(mid=1))
    t, out = put_in_thread(intake, m(mid=2))
    time.sleep(0.2)
    intake.close()
    t.join(2)
    assert out == [False]
    assert len(intake) == 1
    assert not intake.put(m(mid=3))


def test_get_times_out_with_queue_empty() -> None:
    intake = Intake()
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        intake.get(timeout=0.2)
    assert time.monotonic() - started >= 0.19
    with pytest.raises(queue.Empty):
        intake.get_nowait()


def test_limits_must_allow_one_message() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Intake(max_messages=0)
