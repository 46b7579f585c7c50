"""The bounded hand-over from paho's network thread to the worker, by messages and bytes.

Ingest must never turn a fast publisher into memory growth. What bounds the messages
paho has received but the worker has not taken yet depends on their QoS:

- **QoS 1** (what gateways publish): the broker sends at most its in-flight window
  (``max_inflight_messages``) of messages we have not acked, and we ack only after the
  database commit; that window is the flow control. Should a broker allow more, `put`
  blocks paho's network thread until the worker makes room; paho then stops reading the
  socket and TCP pushes back on the broker. A QoS 1 message is never dropped here: an
  un-acked message it is the broker's job to re-deliver.
- **QoS 0** messages are outside that window and nobody re-sends them, so nothing holds
  back a flood of them. They are not data ingest promised to keep: they may use half
  of the limits, and beyond that they are dropped and counted (the other half stays
  free for QoS 1, so a flood never blocks real data).

A message larger than the byte limit is still taken when the intake is empty, so a
legal large payload can never wedge the stream.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable

from ingest.plan import Received

DEFAULT_MAX_MESSAGES = 1000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class Intake:
    """A thread-safe FIFO of received messages, bounded by count and by payload bytes."""

    def __init__(
        self,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        on_drop: Callable[[Received], None] | None = None,
    ) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("the intake needs room for at least one message and one byte")
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.taken = 0  # messages taken, any QoS
        self.dropped = 0  # QoS 0 messages dropped because the intake was full
        self._on_drop = on_drop
        self._items: deque[Received] = deque()
        self._bytes = 0
        self._closed = False
        self._woken = False  # `wake` was called and no `take` has returned since
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        """Payload bytes held now."""
        return self._bytes

    def put(self, msg: Received) -> bool:
        """Take ``msg``; QoS 1/2 waits for room, QoS 0 is dropped without it; False if not taken."""
        size = len(msg.payload)
        with self._cond:
            if msg.qos == 0:
                taken = not self._closed and self._fits(size, share=2)
                if not taken:
                    self.dropped += 1
            else:
                while not self._closed and not self._fits(size, share=1):
                    self._cond.wait()
                taken = not self._closed
            if taken:
                self.taken += 1
                self._items.append(msg)
                self._bytes += size
                self._cond.notify_all()
        if not taken and msg.qos == 0 and self._on_drop is not None:
            self._on_drop(msg)
        return taken

    def _fits(self, size: int, *, share: int) -> bool:
        if not self._items:
            return True
        return (
            len(self._items) < self.max_messages // share
            and self._bytes + size <= self.max_bytes // share
        )

    def get(self, timeout: float | None = None) -> Received:
        """The oldest message; wait up to ``timeout`` seconds, then raise `queue.Empty`."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                raise queue.Empty
            msg = self._items.popleft()
            self._bytes -= len(msg.payload)
            self._cond.notify_all()
            return msg

    def take(self, max_messages: int, max_bytes: int, timeout: float) -> list[Received]:
        """Up to ``max_messages`` oldest messages (``max_bytes`` of payload), all at once.

        Waits up to ``timeout`` seconds for the first one, and returns early, possibly
        empty, when `wake` is called. The first message is taken whatever its size.
        One lock round for a whole run of messages: the worker collects this way.
        """
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items) or self._woken, timeout)
            self._woken = False
            out: list[Received] = []
            size = 0
            items = self._items
            while items and len(out) < max_messages:
                n = len(items[0].payload)
                if out and size + n > max_bytes:
                    break
                out.append(items.popleft())
                size += n
            if out:
                self._bytes -= size
                self._cond.notify_all()
            return out

    def wake(self) -> None:
        """Make a waiting (or the next) `take` return at once, with what there is."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def get_nowait(self) -> Received:
        """The oldest message, or raise `queue.Empty`."""
        return self.get(timeout=0)

    def empty(self) -> bool:
        """Whether nothing is waiting."""
        return not self._items

    def close(self) -> None:
        """Stop taking messages and release a `put` that waits (its message is not taken)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
