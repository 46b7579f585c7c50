"""The durable outbox: every reading waits here until ingest has committed it.

Rule 1 of the architecture: nothing is forgotten before it is committed, end to end.
Readings are appended with gateway sequence numbers from a counter kept in the same
SQLite transaction, so numbers are contiguous and never reused, and are deleted only
up to ingest's committed watermark. Each outbox file carries a random ``stream`` id
created with it: an outbox that is wiped starts a new stream, so the watermark of an
old stream can never delete new data.

The file is in WAL mode; a committed append survives the process being killed, and
with ``synchronous=FULL`` also a power cut. Calls are synchronous and short (one
transaction each); the gateway calls them from its event loop thread only.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from gateway.errors import OutboxError
from telemetry.payloads import Reading

Synchronous = Literal["FULL", "NORMAL"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    stream   TEXT    NOT NULL,
    next_seq INTEGER NOT NULL CHECK (next_seq >= 1)
);
CREATE TABLE IF NOT EXISTS series (
    id     INTEGER PRIMARY KEY,
    sensor TEXT NOT NULL,
    qty    TEXT NOT NULL,
    unit   TEXT NOT NULL,
    UNIQUE (sensor, qty, unit)
);
CREATE TABLE IF NOT EXISTS readings (
    seq    INTEGER PRIMARY KEY,
    t      INTEGER NOT NULL,
    series INTEGER NOT NULL REFERENCES series (id),
    value  REAL    NOT NULL,
    flags  INTEGER NOT NULL DEFAULT 0
);
"""


def new_stream_id() -> str:
    """Return a random stream id that fits the wire's ``StreamId`` pattern."""
    return secrets.token_urlsafe(12)


class Outbox:
    """A SQLite outbox of readings keyed by contiguous gateway sequence numbers."""

    def __init__(self, conn: sqlite3.Connection, path: Path, stream: str) -> None:
        self._conn = conn
        self._path = path
        self._stream = stream
        self._series: dict[tuple[str, str, str], int] = {}
        self._series_by_id: dict[int, tuple[str, str, str]] = {}

    @classmethod
    def open(cls, path: Path | str, *, synchronous: Synchronous = "FULL") -> Self:
        """Open (creating if needed) the outbox file at ``path``."""
        path = Path(path)
        if synchronous not in ("FULL", "NORMAL"):
            raise OutboxError(
                path, "open", f"synchronous must be FULL or NORMAL, not {synchronous}"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as err:
            raise OutboxError(path, "open", str(err)) from err
        try:
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"WAL mode is not available (journal mode {mode})")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO stream (id, stream, next_seq) VALUES (1, ?, 1)",
                (new_stream_id(),),
            )
            (stream,) = conn.execute("SELECT stream FROM stream WHERE id = 1").fetchone()
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.close()
            raise OutboxError(path, "open", str(err)) from err
        return cls(conn, path, str(stream))

    @property
    def path(self) -> Path:
        """The outbox file."""
        return self._path

    @property
    def stream(self) -> str:
        """The random id of this outbox's sequence stream, fixed for the file's life."""
        return self._stream

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise OutboxError(self._path, action, str(err)) from err

    def _series_id(self, conn: sqlite3.Connection, key: tuple[str, str, str]) -> int:
        cached = self._series.get(key)
        if cached is not None:
            return cached
        conn.execute("INSERT OR IGNORE INTO series (sensor, qty, unit) VALUES (?, ?, ?)", key)
        (series_id,) = conn.execute(
            "SELECT id FROM series WHERE sensor = ? AND qty = ? AND unit = ?", key
        ).fetchone()
        return int(series_id)

    def append(self, readings: Sequence[Reading]) -> tuple[int, int]:
        """Store ``readings`` durably; return the (first, last) seqs assigned to them."""
        if not readings:
            raise ValueError("append needs at least one reading")
        new_series: dict[tuple[str, str, str], int] = {}
        with self._transaction("append") as conn:
            (first,) = conn.execute("SELECT next_seq FROM stream WHERE id = 1").fetchone()
            rows = []
            for offset, r in enumerate(readings):
                key = (r.sensor, r.qty, r.unit)
                if key not in new_series:
                    new_series[key] = self._series_id(conn, key)
                series_id = new_series[key]
                rows.append((first + offset, r.t, series_id, r.value, r.flags))
            conn.executemany(
                "INSERT INTO readings (seq, t, series, value, flags) VALUES (?, ?, ?, ?, ?)", rows
            )
            last = first + len(readings) - 1
            conn.execute("UPDATE stream SET next_seq = ? WHERE id = 1", (last + 1,))
        # cache series ids only once they are committed
        self._series.update(new_series)
        self._series_by_id.update({v: k for k, v in new_series.items()})
        return int(first), int(last)

    def _series_key(self, series_id: int) -> tuple[str, str, str]:
        key = self._series_by_id.get(series_id)
        if key is None:
            sensor, qty, unit = self._conn.execute(
                "SELECT sensor, qty, unit FROM series WHERE id = ?", (series_id,)
            ).fetchone()
            key = (str(sensor), str(qty), str(unit))
            self._series_by_id[series_id] = key
            self._series[key] = series_id
        return key

    def read_from(self, seq: int, limit: int) -> list[tuple[int, Reading]]:
        """Return up to ``limit`` stored readings with seq >= ``seq``, in order."""
        if limit <= 0:
            return []
        try:
            rows = self._conn.execute(
                "SELECT seq, t, series, value, flags FROM readings WHERE seq >= ? "
                "ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
            out: list[tuple[int, Reading]] = []
            for row_seq, t, series_id, value, flags in rows:
                sensor, qty, unit = self._series_key(int(series_id))
                reading = Reading(t=t, sensor=sensor, qty=qty, value=value, unit=unit, flags=flags)
                out.append((int(row_seq), reading))
        except sqlite3.Error as err:
            raise OutboxError(self._path, "read", str(err)) from err
        return out

    def confirm(self, committed: int) -> int:
        """Delete every reading with sequence number <= ``committed``; return how many."""
        with self._transaction("confirm") as conn:
            deleted = conn.execute("DELETE FROM readings WHERE seq <= ?", (committed,)).rowcount
        return int(deleted)

    def _scalar(self, sql: str, action: str) -> int | None:
        try:
            (value,) = self._conn.execute(sql).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, action, str(err)) from err
        return None if value is None else int(value)

    def depth(self) -> int:
        """How many readings wait for confirmation."""
        return self._scalar("SELECT count(*) FROM readings", "count") or 0

    def last_seq(self) -> int:
        """Return the highest sequence number ever assigned, 0 if none."""
        return (self._scalar("SELECT next_seq FROM stream WHERE id = 1", "read") or 1) - 1

    def first_seq(self) -> int:
        """Return the oldest unconfirmed seq; when empty, the seq the next append gets."""
        oldest = self._scalar("SELECT min(seq) FROM readings", "read")
        return oldest if oldest is not None else self.last_seq() + 1

    def close(self) -> None:
        """Close the file; later calls fail."""
        try:
            self._conn.close()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "close", str(err)) from err

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
