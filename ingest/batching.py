"""Adaptive batching: the collector hands a batch over the moment the writer is free.

A fixed batch timer costs every reading its wait at low load (the 200 ms timer was
most of an alarm's latency) and saves nothing at full load. So the worker's two
stages meet through a `Handoff` that knows whether the writer is *waiting*:

- the collector (the worker's main thread) takes whatever the intake holds, decodes it
  into the next `Batch`, and hands the batch over as soon as the writer waits for one;
- while the writer commits, the collector goes on taking and decoding, up to
  ``max_messages``/``max_bytes``; a full batch waits for the writer.

At low load a message is therefore committed as soon as it is decoded (a flush per
message or so); under load, batches grow by themselves to what arrived during the
previous commit (group commit). Ack-after-commit is untouched: the writer acks a batch
after its transaction, and only then does the broker send more than its in-flight
window (``max_inflight_messages``). With ``max_messages`` at most half that window two
batches are in flight, one committing and one being collected.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.plan import Plan, Received


@dataclass
class Batch:
    """Messages taken from the intake and their decoded plan, not yet handed over."""

    messages: list[Received] = field(default_factory=list)
    plan: Plan = field(default_factory=Plan)
    size: int = 0  # payload bytes
    started: float = 0.0  # monotonic time its first message was taken

    def add(self, msgs: list[Received], *, now_ms: int, max_future_ms: int) -> None:
        """Take ``msgs`` in and decode them into the plan (never raises: Plan.add)."""
        if not self.messages:
            self.started = time.monotonic()
        self.messages.extend(msgs)
        for m in msgs:
            self.size += len(m.payload)
            self.plan.add(m, now_ms=now_ms, max_future_ms=max_future_ms)


class Handoff:
    """A one-batch slot between collector and writer that says whether the writer waits."""

    def __init__(self, on_writer_waiting: Callable[[], None] = lambda: None) -> None:
        self._on_writer_waiting = on_writer_waiting  # e.g. wake the collector up
        self._cond = threading.Condition()
        self._item: Batch | None = None
        self._full = False
        self._waiting = False  # the writer is inside `get` with the slot empty

    @property
    def writer_waiting(self) -> bool:
        """Whether the writer is idle, waiting for a batch."""
        with self._cond:
            return self._waiting and not self._full

    def put(self, item: Batch | None, timeout: float) -> bool:
        """Put ``item`` (None: stop) once the slot is free; False if it was not in time."""
        with self._cond:
            if not self._cond.wait_for(lambda: not self._full, timeout):
                return False
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def wait_writer(self, timeout: float) -> bool:
        """Wait until the writer waits for a batch; whether it does."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting and not self._full, timeout)

    def get(self, timeout: float) -> Batch | None:
        """The next batch (None: stop); raise `queue.Empty` after ``timeout`` seconds."""
        with self._cond:
            self._waiting = True
            self._cond.notify_all()
            if not self._full:
                self._on_writer_waiting()  # the collector never holds our lock and its own
            try:
                if not self._cond.wait_for(lambda: self._full, timeout):
                    raise queue.Empty
                item, self._item, self._full = self._item, None, False
                self._cond.notify_all()
                return item
            finally:
                self._waiting = False
