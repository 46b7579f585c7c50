"""Dead letters: what ingest could not store, kept with its reason — bounded and once.

A dead letter keeps the first ``payload_bytes`` bytes of the rejected payload (a setting,
8 KiB by default) with the payload's total size and sha256, so a person can see what it
was and match it against the gateway's copy without the table holding megabytes of
whatever a hostile client sent. Rows are idempotent on ``dedupe_key``:

- an item rejected from a batch has a stable position — ``item {topic} {stream} {seq}``
  (the gateway numbers every item once per stream; the item's index in the batch is not
  stable, a re-send may batch differently);
- a whole message has none, so it is keyed by ``message {sha256(topic NUL payload)}``.

A re-sent dead letter (the gateway re-sends whatever the watermark has not covered,
at-least-once) adds no row: it counts ``times_received`` up and moves
``last_received_at``. Retention purges rows not received for ``retention`` (run by the
ingest worker, which owns ``telemetry.dead_letters``; see docs/reliability.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import psycopg

from telemetry.codec import clip

MAX_TOPIC_CHARS = 1024  # MQTT allows 64 KiB; a topic this long is hostile and is cut
MAX_REASON_CHARS = 1000
PURGE_BATCH = 5_000
# pg_try_advisory_xact_lock(int, int): one purge at a time across workers
PURGE_LOCK = (7233, 1)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Something that could not be stored as a reading, kept with its reason."""

    topic: str
    reason: str
    payload: bytes
    gateway: str | None = None
    stream: str | None = None
    seq: int | None = None
    item_index: int | None = None

    @property
    def dedupe_key(self) -> str:
        """What makes a re-sent copy of this dead letter the same one."""
        if self.stream is not None and self.seq is not None:
            return f"item {self.topic} {self.stream} {self.seq}"
        digest = hashlib.sha256(self.topic.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
        digest.update(self.payload)
        return f"message {digest.hexdigest()}"


def row(letter: DeadLetter, *, payload_bytes: int) -> tuple[object, ...]:
    """The column values of ``letter`` with its payload cut to ``payload_bytes`` (pure)."""
    return (
        _text(letter.topic, MAX_TOPIC_CHARS),
        letter.gateway,
        letter.stream,
        letter.seq,
        letter.item_index,
        _text(letter.reason, MAX_REASON_CHARS),
        letter.payload[:payload_bytes],
        len(letter.payload),
        hashlib.sha256(letter.payload).digest(),
        letter.dedupe_key,
    )


def _text(value: str, limit: int) -> str:
    # PostgreSQL text holds no NUL; a reason or topic quoting hostile input may have one
    return clip(value.replace("\x00", "\\x00"), limit)


_INSERT = """
INSERT INTO telemetry.dead_letters AS d
    (topic, gateway_id, stream, seq, item_index, reason, payload, payload_size,
     payload_sha256, dedupe_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (dedupe_key) DO UPDATE
   SET times_received = d.times_received + 1, last_received_at = now()
RETURNING (xmax = 0)
"""


def write(conn: psycopg.Connection, letters: list[DeadLetter], *, payload_bytes: int) -> int:
    """Insert ``letters`` in the caller's transaction; return how many rows are new."""
    if not letters:
        return 0
    new = 0
    with conn.cursor() as cur:
        cur.executemany(
            _INSERT, [row(d, payload_bytes=payload_bytes) for d in letters], returning=True
        )
        while True:
            fetched = cur.fetchone()
            new += bool(fetched and fetched[0])
            if not cur.nextset():
                break
    return new


def purge(conn: psycopg.Connection, *, before: datetime, max_batches: int = 20) -> int | None:
    """Delete dead letters last received before ``before``, in batches; return rows deleted.

    Each batch of `PURGE_BATCH` rows is its own transaction (the caller's connection must
    not be inside one); at most ``max_batches`` run, so a large backlog is purged over
    several calls instead of holding up the caller. Returns None when another worker
    holds the purge lock; it is doing the same work.
    """
    deleted = 0
    for _ in range(max_batches):
        with conn.transaction():
            got = conn.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", PURGE_LOCK).fetchone()
            if not (got and got[0]):
                return None
            n = conn.execute(
                "DELETE FROM telemetry.dead_letters WHERE id IN ("
                " SELECT id FROM telemetry.dead_letters WHERE last_received_at < %s"
                " ORDER BY last_received_at LIMIT %s)",
                (before, PURGE_BATCH),
            ).rowcount
        deleted += n
        if n < PURGE_BATCH:
            break
    return deleted
