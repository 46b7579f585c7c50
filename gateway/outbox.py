"""The durable outbox: every reading waits here until ingest has committed it.

Rule 1 of the architecture: nothing is forgotten before it is committed, end to end.
Readings are appended with gateway sequence numbers from a counter kept in the same
SQLite transaction, so numbers are contiguous and never reused, and are deleted only
up to ingest's committed watermark. Each outbox file carries a random ``stream`` id
created with it: an outbox that is wiped starts a new stream, so the watermark of an
old stream can never delete new data. ``restart_stream`` gives a stream a new id when
ingest's watermark has overtaken the outbox (a forged ack, or a restored backup).

The file is in WAL mode; a committed append survives the process being killed, and
with ``synchronous=FULL`` also a power cut. Calls are synchronous and short (one
transaction each); the gateway calls them from its event loop thread only.

It is built to hold days of a busy site offline (millions of rows) in bounded memory:
the page cache is capped (``CACHE_KIB``), readers take ``LIMIT``-ed chunks by seq,
deletes are ranges of the integer primary key (the rowid b-tree, no extra index),
``depth`` is arithmetic on the contiguous seqs instead of a table scan, and the WAL
is checkpointed every ``WAL_AUTOCHECKPOINT_PAGES`` and truncated back to
``JOURNAL_SIZE_LIMIT`` so it cannot grow with the backlog.

The file is bounded by SQLite's own ``max_page_count``: the smaller of the configured
cap (``max_bytes``) and what the disk has free less ``reserve_bytes``, re-read at most
every ``FIT_EVERY_S`` while appending. Past it an append fails with ``SQLITE_FULL``,
refused whole, as `OutboxFullError`; nothing held is touched — the oldest data is the
evidence, and the gateway reports what it refused (docs/reliability.md). The reserve
matters: on a disk that is really full SQLite cannot checkpoint its WAL into the main
file, and then not even a delete commits, so the outbox could never drain (measured on
a full tmpfs). Pages that confirmed rows free are reused and freed disk space raises
the limit again, so appends resume by themselves.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from gateway.errors import OutboxError, OutboxFullError
from telemetry.payloads import Reading

Synchronous = Literal["FULL", "NORMAL"]
Listener = Callable[[Sequence[Reading]], None]
"""Called with each appended batch after it is committed (the gateway's health monitor)."""

CACHE_KIB = 8192  # SQLite page cache per connection; the default is 2 MiB
WAL_AUTOCHECKPOINT_PAGES = 1000  # about 4 MiB of WAL before a checkpoint (SQLite default)
JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024  # WAL bytes kept on disk after a checkpoint
RESERVE_BYTES = 64 * 1024 * 1024  # disk left free for the WAL, checkpoints and deletes
FIT_EVERY_S = 1.0  # how often appends re-read the disk's free space

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
CREATE TABLE IF NOT EXISTS event_streams (
    kind     TEXT    PRIMARY KEY,
    stream   TEXT    NOT NULL,
    next_seq INTEGER NOT NULL CHECK (next_seq >= 1)
);
CREATE TABLE IF NOT EXISTS events (
    kind TEXT    NOT NULL,
    seq  INTEGER NOT NULL,
    item BLOB    NOT NULL,
    PRIMARY KEY (kind, seq)
);
"""


def _full(err: sqlite3.Error) -> bool:
    """Whether SQLite failed for want of room: the cap (``max_page_count``) or the disk."""
    return getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def new_stream_id() -> str:
    """Return a random stream id that fits the wire's ``StreamId`` pattern."""
    return secrets.token_urlsafe(12)


def _renumber(
    conn: sqlite3.Connection, table: str, where: str, args: tuple[str, ...], shift: int
) -> None:
    """Move ``table``'s seqs down by ``shift`` (through negatives: keys stay unique)."""
    if shift <= 0:
        return
    conn.execute(f"UPDATE {table} SET seq = -seq WHERE seq > 0{where}", args)  # noqa: S608
    conn.execute(f"UPDATE {table} SET seq = -seq - ? WHERE seq < 0{where}", (shift, *args))  # noqa: S608


class Outbox:
    """A SQLite outbox of readings keyed by contiguous gateway sequence numbers."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        stream: str,
        *,
        max_bytes: int | None = None,
        reserve_bytes: int = RESERVE_BYTES,
    ) -> None:
        self._conn = conn
        self._path = path
        self._stream = stream
        self._max_bytes = max_bytes
        self._reserve_bytes = reserve_bytes
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        self._page_size = int(page_size)
        self._fitted_at: float | None = None
        self._fit()
        self._series: dict[tuple[str, str, str], int] = {}
        self._series_by_id: dict[int, tuple[str, str, str]] = {}
        self._listeners: list[Listener] = []

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        synchronous: Synchronous = "FULL",
        max_bytes: int | None = None,
        reserve_bytes: int = RESERVE_BYTES,
    ) -> Self:
        """Open (creating if needed) the outbox file at ``path``.

        It grows to at most ``max_bytes`` (None: no cap of its own) and never into the
        last ``reserve_bytes`` of free disk space.
        """
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
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
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
        try:
            return cls(conn, path, str(stream), max_bytes=max_bytes, reserve_bytes=reserve_bytes)
        except (sqlite3.Error, OutboxError) as err:
            conn.close()
            if isinstance(err, OutboxError):
                raise
            raise OutboxError(path, "open", str(err)) from err

    @property
    def path(self) -> Path:
        """The outbox file."""
        return self._path

    def _fit(self) -> None:
        """Set ``max_page_count`` from the cap and the disk's room, every ``FIT_EVERY_S``.

        SQLite keeps it at least the file's current size.
        """
        now = time.monotonic()
        if self._fitted_at is not None and now - self._fitted_at < FIT_EVERY_S:
            return
        self._fitted_at = now
        try:
            disk = os.statvfs(self._path.parent)
        except OSError:
            return
        try:
            (pages,) = self._conn.execute("PRAGMA page_count").fetchone()
            room = int(pages) * self._page_size + disk.f_bavail * disk.f_frsize
            room -= self._reserve_bytes
            limit = room if self._max_bytes is None else min(self._max_bytes, room)
            self._conn.execute(f"PRAGMA max_page_count={max(1, limit // self._page_size)}")
        except sqlite3.Error as err:
            raise OutboxError(self._path, "set its size limit", str(err)) from err

    def size(self) -> tuple[int, int]:
        """Return (bytes in use, bytes it may grow to) of the outbox file, as last fitted."""
        try:
            (pages,) = self._conn.execute("PRAGMA page_count").fetchone()
            (free,) = self._conn.execute("PRAGMA freelist_count").fetchone()
            (limit,) = self._conn.execute("PRAGMA max_page_count").fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "read", str(err)) from err
        return (int(pages) - int(free)) * self._page_size, int(limit) * self._page_size

    @property
    def stream(self) -> str:
        """The random id of this outbox's sequence stream, fixed for the file's life."""
        return self._stream

    @contextlib.contextmanager
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
            if self._conn.in_transaction:  # a COMMIT that failed for want of room
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
            if _full(err):
                raise OutboxFullError(self._path, action, str(err)) from err
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
        self._fit()
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
        for listener in self._listeners:
            listener(readings)
        return int(first), int(last)

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every batch appended from now on, once it is durable."""
        self._listeners.append(listener)

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
        return self._delete_upto("confirm", "readings", "", (), committed)

    def _delete_upto(
        self, action: str, table: str, where: str, args: tuple[str, ...], committed: int
    ) -> int:
        """Delete ``table``'s rows with seq <= ``committed`` (and ``where``); return how many."""
        sql = f"DELETE FROM {table} WHERE seq <= ?{where}"  # noqa: S608 - our own names
        with self._transaction(action) as conn:
            return int(conn.execute(sql, (committed, *args)).rowcount)

    def restart_stream(self) -> str:
        """Start a new readings stream: a fresh id, and what is held renumbered from seq 1.

        For an outbox that ingest's watermark has overtaken (restored from a backup):
        under its old id its next seqs would be taken as already committed. Nothing held
        is deleted; under the new id it is all sent again. Returns the new id.
        """
        stream = new_stream_id()
        with self._transaction("restart stream") as conn:
            (next_seq,) = conn.execute("SELECT next_seq FROM stream WHERE id = 1").fetchone()
            (oldest,) = conn.execute("SELECT min(seq) FROM readings").fetchone()
            shift = (oldest if oldest is not None else next_seq) - 1
            _renumber(conn, "readings", "", (), shift)
            conn.execute(
                "UPDATE stream SET stream = ?, next_seq = ? WHERE id = 1",
                (stream, next_seq - shift),
            )
        self._stream = stream
        return stream

    def _scalar(self, sql: str, action: str) -> int | None:
        try:
            (value,) = self._conn.execute(sql).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, action, str(err)) from err
        return None if value is None else int(value)

    def depth(self) -> int:
        """How many readings wait for confirmation."""
        # seqs are contiguous and deleted only as a prefix, so no count(*) scan is needed
        return self.last_seq() - self.first_seq() + 1

    def oldest(self) -> tuple[int, int] | None:
        """Return (seq, device time in ms) of the oldest unconfirmed reading, or None."""
        try:
            row = self._conn.execute("SELECT seq, t FROM readings ORDER BY seq LIMIT 1").fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "read", str(err)) from err
        return None if row is None else (int(row[0]), int(row[1]))

    def last_seq(self) -> int:
        """Return the highest sequence number ever assigned, 0 if none."""
        return (self._scalar("SELECT next_seq FROM stream WHERE id = 1", "read") or 1) - 1

    def first_seq(self) -> int:
        """Return the oldest unconfirmed seq; when empty, the seq the next append gets."""
        oldest = self._scalar("SELECT min(seq) FROM readings", "read")
        return oldest if oldest is not None else self.last_seq() + 1

    # --- edge events (tags, scans): one sequence stream per kind, same discipline ---

    def event_stream(self, kind: str) -> str:
        """Return the stream id of ``kind`` (created with a random id on first use)."""
        with self._transaction("open event stream") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO event_streams (kind, stream, next_seq) VALUES (?, ?, 1)",
                (kind, new_stream_id()),
            )
            (stream,) = conn.execute(
                "SELECT stream FROM event_streams WHERE kind = ?", (kind,)
            ).fetchone()
        return str(stream)

    def append_events(self, kind: str, items: Sequence[bytes]) -> tuple[int, int]:
        """Store encoded event ``items`` of ``kind`` durably; return their (first, last) seqs."""
        if not items:
            raise ValueError("append_events needs at least one item")
        self._fit()
        with self._transaction("append events") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO event_streams (kind, stream, next_seq) VALUES (?, ?, 1)",
                (kind, new_stream_id()),
            )
            (first,) = conn.execute(
                "SELECT next_seq FROM event_streams WHERE kind = ?", (kind,)
            ).fetchone()
            conn.executemany(
                "INSERT INTO events (kind, seq, item) VALUES (?, ?, ?)",
                [(kind, first + i, item) for i, item in enumerate(items)],
            )
            last = first + len(items) - 1
            conn.execute("UPDATE event_streams SET next_seq = ? WHERE kind = ?", (last + 1, kind))
        return int(first), int(last)

    def read_events(self, kind: str, seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Return up to ``limit`` stored items of ``kind`` with seq >= ``seq``, in order."""
        if limit <= 0:
            return []
        try:
            rows = self._conn.execute(
                "SELECT seq, item FROM events WHERE kind = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (kind, seq, limit),
            ).fetchall()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "read events", str(err)) from err
        return [(int(q), bytes(item)) for q, item in rows]

    def confirm_events(self, kind: str, committed: int) -> int:
        """Delete every item of ``kind`` with seq <= ``committed``; return how many."""
        return self._delete_upto("confirm events", "events", " AND kind = ?", (kind,), committed)

    def restart_event_stream(self, kind: str) -> str:
        """Start a new stream of ``kind`` as `restart_stream` does; return its id."""
        stream = new_stream_id()
        with self._transaction("restart event stream") as conn:
            row = conn.execute(
                "SELECT next_seq FROM event_streams WHERE kind = ?", (kind,)
            ).fetchone()
            next_seq = int(row[0]) if row else 1
            (oldest,) = conn.execute(
                "SELECT min(seq) FROM events WHERE kind = ?", (kind,)
            ).fetchone()
            shift = (oldest if oldest is not None else next_seq) - 1
            _renumber(conn, "events", " AND kind = ?", (kind,), shift)
            conn.execute(
                "INSERT INTO event_streams (kind, stream, next_seq) VALUES (?, ?, ?) "
                "ON CONFLICT (kind) DO UPDATE SET stream = excluded.stream, "
                "next_seq = excluded.next_seq",
                (kind, stream, next_seq - shift),
            )
        return stream

    def event_last_seq(self, kind: str) -> int:
        """Return the highest seq ever assigned to ``kind``, 0 if none."""
        try:
            row = self._conn.execute(
                "SELECT next_seq FROM event_streams WHERE kind = ?", (kind,)
            ).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "read events", str(err)) from err
        return int(row[0]) - 1 if row else 0

    def event_first_seq(self, kind: str) -> int:
        """Return the oldest unconfirmed seq of ``kind``; when none, the next one to assign."""
        try:
            (oldest,) = self._conn.execute(
                "SELECT min(seq) FROM events WHERE kind = ?", (kind,)
            ).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "read events", str(err)) from err
        return int(oldest) if oldest is not None else self.event_last_seq(kind) + 1

    def event_depth(self, kind: str) -> int:
        """How many items of ``kind`` wait for confirmation."""
        try:
            (n,) = self._conn.execute(
                "SELECT count(*) FROM events WHERE kind = ?", (kind,)
            ).fetchone()
        except sqlite3.Error as err:
            raise OutboxError(self._path, "count events", str(err)) from err
        return int(n)

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
