"""Flow control, pure: the go-back-N send window and the retry backoff.

Broker PUBACKs are not proof of storage (a broker drops queued messages for slow
subscribers, and one restarted without persistence loses its queue), so the gateway
trusts only ingest's committed watermark. `SendWindow` tracks the next sequence
number to publish, pauses when too much is unconfirmed, and goes back to
``committed + 1`` when the watermark has made no progress for ``resend_after_s``.
`Backoff` paces retries of the broker connection and of device polls. Nothing here
does I/O or reads a clock: times are passed in, so tests check exact numbers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SendWindow:
    """Sent/committed positions of one stream, with a resend deadline."""

    resend_after_s: float
    max_unconfirmed: int
    committed: int
    next_seq: int
    waiting_since: float | None = None

    @classmethod
    def starting_at(
        cls, first_seq: int, *, resend_after_s: float, max_unconfirmed: int
    ) -> SendWindow:
        """Make a window whose first unconfirmed seq is ``first_seq`` (the outbox's oldest)."""
        return cls(resend_after_s, max_unconfirmed, committed=first_seq - 1, next_seq=first_seq)

    @property
    def unconfirmed(self) -> int:
        """How many seqs have been sent but not committed."""
        return self.next_seq - 1 - self.committed

    def room(self) -> int:
        """How many more seqs may be sent before pausing for the watermark."""
        return max(0, self.max_unconfirmed - self.unconfirmed)

    def sent(self, last_seq: int, now: float) -> None:
        """Record that everything up to ``last_seq`` has been published."""
        self.next_seq = max(self.next_seq, last_seq + 1)
        if self.waiting_since is None and self.unconfirmed > 0:
            self.waiting_since = now

    def acked(self, committed: int, now: float) -> bool:
        """Take a new watermark; return False if it is not ahead of the one we have."""
        if committed <= self.committed:
            return False
        self.committed = committed
        self.next_seq = max(self.next_seq, committed + 1)
        self.waiting_since = now if self.unconfirmed > 0 else None
        return True

    def deadline(self) -> float | None:
        """When to go back if the watermark does not move, or None if nothing waits."""
        if self.waiting_since is None or self.unconfirmed == 0:
            return None
        return self.waiting_since + self.resend_after_s

    def expire(self, now: float) -> bool:
        """Go back to ``committed + 1`` if the deadline has passed; return whether it did."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        self.rewind()
        return True

    def rewind(self) -> None:
        """Send again from ``committed + 1`` (after a timeout or a new connection)."""
        self.next_seq = self.committed + 1
        self.waiting_since = None


@dataclass
class Backoff:
    """Delays ``initial``, ``initial*factor``, … up to ``cap``; `reset` after a success.

    With ``jitter`` > 0 each delay is shortened by a random fraction up to ``jitter``,
    so many gateways that lost the same broker do not all come back in the same second.
    """

    initial: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.0
    rand: Callable[[], float] = field(default=random.random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError(f"need 0 < initial <= cap, got {self.initial} and {self.cap}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")

    def next_delay(self) -> float:
        """Return the delay before the next attempt; each call counts one more failure."""
        exponent = min(self.attempts, 64)  # no float overflow after a long outage
        delay = min(self.cap, self.initial * self.factor**exponent)
        self.attempts += 1
        return delay * (1.0 - self.jitter * self.rand())

    def reset(self) -> None:
        """Start again from ``initial`` (call after a success)."""
        self.attempts = 0
