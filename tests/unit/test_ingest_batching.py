"""Adaptive flush: a batch goes to the writer the moment it is free (ingest/batching.py)."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from ingest.batching import Batch, Handoff
from ingest.intake import Intake
from ingest.plan import Received
from ingest.settings import IngestSettings
from ingest.worker import Worker

TOPIC = "ct/v1/site/gw-1/readings"


def msg(i: int, size: int = 10) -> Received:
    return Received(TOPIC, b"x" * size, i, 1, 1)


def test_take_returns_a_run_of_messages_within_the_limits() -> None:
    inbox = Intake()
    for i in range(5):
        inbox.put(msg(i, size=100))
    assert [m.mid for m in inbox.take(3, 10_000, timeout=0)] == [0, 1, 2]
    # 250 bytes leave room for two more of 100 bytes, not three
    assert [m.mid for m in inbox.take(10, 250, timeout=0)] == [3, 4]
    assert inbox.bytes == 0
    inbox.put(msg(9, size=1000))
    # the first message is taken whatever its size: a large one never wedges the stream
    assert [m.mid for m in inbox.take(10, 1, timeout=0)] == [9]


def test_wake_ends_a_waiting_take_at_once() -> None:
    inbox = Intake()
    threading.Timer(0.05, inbox.wake).start()
    started = time.monotonic()
    assert inbox.take(10, 1000, timeout=5) == []
    assert time.monotonic() - started < 2
    inbox.wake()  # a wake with nobody waiting ends the next take
    assert inbox.take(10, 1000, timeout=5) == []


def test_handoff_knows_when_the_writer_waits() -> None:
    woken = threading.Event()
    h = Handoff(on_writer_waiting=woken.set)
    assert not h.writer_waiting
    got: list[Batch | None] = []
    writer = threading.Thread(target=lambda: got.append(h.get(timeout=5)))
    writer.start()
    assert h.wait_writer(timeout=5)
    assert woken.wait(5), "the collector is told the writer is free"
    b = Batch(messages=[msg(1)])
    assert h.put(b, timeout=1)
    writer.join(5)
    assert got == [b]
    assert not h.writer_waiting
    with pytest.raises(queue.Empty):
        h.get(timeout=0.01)


def worker(**settings: object) -> Worker:
    """A worker that is never started: its collector is driven by hand."""
    return Worker(IngestSettings(**settings), "postgresql://unused/none")  # type: ignore[arg-type]


def test_a_free_writer_gets_a_single_message_without_a_timer() -> None:
    w = worker(max_messages=100)
    h = Handoff(on_writer_waiting=w.consumer.inbox.wake)
    got: list[Batch | None] = []
    writer = threading.Thread(target=lambda: got.append(h.get(timeout=5)))
    writer.start()
    assert h.wait_writer(5)
    w.consumer.inbox.put(msg(1))
    batch = Batch()
    started = time.monotonic()
    while not got and time.monotonic() - started < 5:
        batch = w._collect(batch, h)
        writer.join(0.001)
    assert got
    assert got[0] is not None
    assert [m.mid for m in got[0].messages] == [1]
    assert got[0].plan.messages == 1  # decoded by the collector (a dead letter here)
    assert batch.messages == []


def test_a_busy_writer_lets_the_batch_grow_to_its_cap() -> None:
    w = worker(max_messages=3)
    h = Handoff()  # nobody is waiting: the writer is busy
    for i in range(5):
        w.consumer.inbox.put(msg(i))
    batch = Batch()
    for _ in range(5):
        batch = w._collect(batch, h)
    assert [m.mid for m in batch.messages] == [0, 1, 2]
    assert len(w.consumer.inbox) == 2  # left for the next batch


def test_max_delay_lets_a_batch_linger_for_more() -> None:
    w = worker(max_messages=100, max_delay_ms=300)
    h = Handoff()
    got: list[Batch | None] = []
    writer = threading.Thread(target=lambda: got.append(h.get(timeout=5)))
    writer.start()
    assert h.wait_writer(5)
    w.consumer.inbox.put(msg(1))
    batch = w._collect(Batch(), h)  # takes the first message
    threading.Timer(0.05, lambda: w.consumer.inbox.put(msg(2))).start()
    while not got:
        batch = w._collect(batch, h)
        writer.join(0.001)
    assert got[0] is not None
    assert [m.mid for m in got[0].messages] == [1, 2]
