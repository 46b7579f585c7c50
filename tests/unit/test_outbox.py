"""The durable outbox: contiguous seqs, watermark deletes, stream ids, crash safety."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import OutboxError
from gateway.outbox import Outbox
from telemetry.payloads import Reading

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000_000


def readings(n: int, *, start: int = 0, sensor: str = "S1") -> list[Reading]:
    return [
        Reading(
            t=T0 + (start + i) * 1000,
            sensor=sensor,
            qty="temperature",
            value=4.0 + i / 10,
            unit="Cel",
        )
        for i in range(n)
    ]


def test_append_assigns_contiguous_seqs_from_one(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        assert box.first_seq() == 1
        assert box.last_seq() == 0
        assert box.append(readings(3)) == (1, 3)
        assert box.append(readings(1)) == (4, 4)
        assert box.append(readings(5)) == (5, 9)
        assert box.depth() == 9
        assert box.first_seq() == 1
        assert box.last_seq() == 9


def test_seqs_continue_after_reopen_and_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        box.append(readings(4))
        assert box.confirm(4) == 4
        assert box.depth() == 0
    with Outbox.open(path) as box:
        # everything was confirmed and deleted, yet the counter goes on
        assert box.first_seq() == 5
        assert box.append(readings(2)) == (5, 6)
    with Outbox.open(path) as box:
        assert box.append(readings(1)) == (7, 7)
        assert [seq for seq, _ in box.read_from(1, 100)] == [5, 6, 7]


def test_read_from_returns_readings_as_appended(tmp_path: Path) -> None:
    batch = (
        readings(3)
        + readings(2, sensor="S2")
        + [Reading(t=T0, sensor="S1", qty="humidity", value=55.5, unit="%", flags=3)]
    )
    with Outbox.open(tmp_path / "o.db") as box:
        box.append(batch)
    with Outbox.open(tmp_path / "o.db") as box:  # a fresh process has no cached series
        rows = box.read_from(1, 100)
        assert rows == list(enumerate(batch, start=1))
        assert box.read_from(4, 2) == [(4, batch[3]), (5, batch[4])]
        assert box.read_from(7, 10) == []


def test_confirm_deletes_only_up_to_the_watermark(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        box.append(readings(10))
        assert box.confirm(0) == 0
        assert box.confirm(4) == 4
        assert box.first_seq() == 5
        assert box.depth() == 6
        assert [seq for seq, _ in box.read_from(1, 100)] == list(range(5, 11))
        assert box.confirm(3) == 0  # an old watermark deletes nothing more
        assert box.confirm(10) == 6
        assert box.depth() == 0
        assert box.first_seq() == 11


def test_stream_id_persists_and_differs_between_files(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "a.db") as a1:
        stream_a = a1.stream
    with Outbox.open(tmp_path / "a.db") as a2:
        assert a2.stream == stream_a
    with Outbox.open(tmp_path / "b.db") as b:
        assert b.stream != stream_a
    # a wiped outbox starts a new stream, so an old watermark cannot delete new data
    (tmp_path / "a.db").unlink()
    for leftover in tmp_path.glob("a.db-*"):
        leftover.unlink()
    with Outbox.open(tmp_path / "a.db") as a3:
        assert a3.stream != stream_a
        assert a3.append(readings(1)) == (1, 1)


def test_stream_id_fits_the_wire_pattern(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", box.stream)


def test_file_is_wal_with_the_chosen_synchronous(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox.open(path, synchronous="NORMAL") as box:
        box.append(readings(1))
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def test_failed_append_assigns_nothing(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        box.append(readings(2))
        with pytest.raises(ValueError, match="at least one"):
            box.append([])
        assert box.append(readings(1)) == (3, 3)


def test_unusable_file_raises_outbox_error(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError) as info:
        Outbox.open(bogus)
    assert info.value.path == bogus
    assert info.value.action == "open"


CHILD = textwrap.dedent(
    """
    import sys, time
    from gateway.outbox import Outbox
    from telemetry.payloads import Reading

    box = Outbox.open(sys.argv[1], synchronous=sys.argv[2])
    items = [
        Reading(t=1_700_000_000_000 + i, sensor="K", qty="temperature", value=i / 4, unit="Cel")
        for i in range(250)
    ]
    for _ in range(4):
        first, last = box.append(items)
    print(first, last, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
def test_appended_data_survives_sigkill(tmp_path: Path, synchronous: str) -> None:
    path = tmp_path / "o.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), synchronous],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # append has returned
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert line.split() == ["751", "1000"]
    with Outbox.open(path) as box:
        assert box.depth() == 1000
        assert box.last_seq() == 1000
        rows = box.read_from(1, 2000)
        assert [seq for seq, _ in rows] == list(range(1, 1001))
        assert rows[-1][1].value == 249 / 4
        assert box.append(readings(1)) == (1001, 1001)


# --- a large backlog: bounded reads, index-friendly deletes, bounded WAL, O(1) depth ---


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    finally:
        conn.close()


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.integers(1, 40)), max_size=30))
def test_depth_always_equals_the_rows_held(ops: list[tuple[bool, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "o.db"
        with Outbox.open(path, synchronous="NORMAL") as box:
            for is_append, n in ops:
                if is_append:
                    box.append(readings(n))
                else:  # a watermark somewhere up to n past the oldest held
                    box.confirm(box.first_seq() - 1 + n)
                assert box.depth() == count_rows(path)


def test_oldest_is_the_first_unconfirmed_reading(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.db") as box:
        assert box.oldest() is None
        box.append(readings(5, start=100))
        assert box.oldest() == (1, T0 + 100_000)
        box.confirm(3)
        assert box.oldest() == (4, T0 + 103_000)
        box.confirm(5)
        assert box.oldest() is None


def test_listeners_see_each_batch_after_it_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    seen: list[tuple[int, int]] = []
    with Outbox.open(path) as box:
        # another connection counts the rows: they must already be committed
        box.add_listener(lambda rs: seen.append((len(rs), count_rows(path))))
        box.append(readings(3))
        box.append(readings(2))
        with pytest.raises(ValueError, match="at least one"):
            box.append([])
    assert seen == [(3, 3), (2, 5)]


def plan(path: Path, sql: str) -> str:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("EXPLAIN QUERY PLAN " + sql, (1, 10)[: sql.count("?")]).fetchall()
    finally:
        conn.close()
    return " | ".join(str(r[-1]) for r in rows)


def test_reads_and_deletes_walk_the_primary_key(tmp_path: Path) -> None:
    # a million-row backlog must not be scanned or sorted per batch or per ack
    path = tmp_path / "o.db"
    with Outbox.open(path) as box:
        box.append(readings(3))
    read = plan(
        path,
        "SELECT seq, t, series, value, flags FROM readings WHERE seq >= ? ORDER BY seq LIMIT ?",
    )
    assert "USING INTEGER PRIMARY KEY (rowid>?)" in read
    assert "TEMP B-TREE" not in read
    delete = plan(path, "DELETE FROM readings WHERE seq <= ?")
    assert "USING INTEGER PRIMARY KEY (rowid<?)" in delete
    oldest = plan(path, "SELECT seq, t FROM readings ORDER BY seq LIMIT 1")
    assert "SCAN readings" in oldest  # in rowid order, stopping at the first row
    assert "TEMP B-TREE" not in oldest


def test_wal_stays_bounded_through_a_large_fill_and_drain(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    wal = tmp_path / "o.db-wal"
    limit = 16 * 1024 * 1024  # journal_size_limit; autocheckpoints keep it near 4 MiB
    peak = 0
    with Outbox.open(path, synchronous="NORMAL") as box:
        for i in range(1500):  # 150,000 readings, 100 per append
            box.append(readings(100, start=i * 100))
            if i % 100 == 0:
                peak = max(peak, wal.stat().st_size)
        assert box.depth() == 150_000
        chunk = box.read_from(1, 500)
        assert [seq for seq, _ in chunk] == list(range(1, 501))  # a bounded chunk
        for committed in range(500, 150_001, 500):  # acks as ingest sends them
            box.confirm(committed)
            peak = max(peak, wal.stat().st_size)
        assert box.confirm(150_000) == 0
        assert box.depth() == 0
        # one big append and one delete of all of it (a watermark that jumped a backlog)
        box.append([r for i in range(100) for r in readings(1000, start=i * 1000)])
        box.confirm(box.last_seq())
        box.append(readings(1))  # the next transaction checkpoints and truncates
        assert wal.stat().st_size <= limit
    assert peak < limit
