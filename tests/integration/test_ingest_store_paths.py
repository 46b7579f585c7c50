"""The store's two paths on real PostgreSQL: COPY straight into readings, staging on a conflict.

The common path must store exactly what the staged path stored (time to the
millisecond, value, flags, seq, the ranges queued for evaluation); a batch holding a
re-delivery must still store its new readings once, count the duplicates and
dead-letter a reading whose time is stored with another value.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from ingest.plan import Plan, Received
from ingest.store import Store
from telemetry.codec import encode
from telemetry.payloads import VERSION, Reading, ReadingBatch

pytestmark = pytest.mark.timeout(120)

T0 = 1_780_000_000_123  # ms, not a whole second: the millisecond must survive
TOPIC = "ct/v1/plant-1/gw-1/readings"


def plan(first_seq: int, values: list[tuple[int, str, float]], flags: int = 0) -> Plan:
    """A plan of one message: (minute offset, sensor, value) readings of gw-1."""
    items = [
        Reading(t=T0 + m * 60_000, sensor=s, qty="temperature", value=v, unit="Cel", flags=flags)
        for m, s, v in values
    ]
    body = ReadingBatch(
        v=VERSION,
        gateway="gw-1",
        stream="s1",
        seq=(first_seq, first_seq + len(items) - 1),
        sent=T0,
        items=items,
    )
    p = Plan()
    p.add(Received(TOPIC, encode(body), 1, 1, 1), now_ms=T0 + 3_600_000, max_future_ms=600_000)
    return p


def write(db_url: str, p: Plan) -> tuple[int, int, int, int]:
    with psycopg.connect(db_url) as conn:
        result = Store(conn).write(p)
        conn.commit()
    return result.stored, result.duplicates, result.dead_letters, result.watermarks.popitem()[1]


def stored(db_url: str) -> list[tuple[str, datetime, float, int, int]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT s.uid, r.time, r.value, r.flags, r.gateway_seq FROM telemetry.readings r "
            "JOIN telemetry.sensors s ON s.id = r.sensor_id ORDER BY s.uid, r.time"
        ).fetchall()


def pending(db_url: str) -> list[tuple[str, datetime, datetime]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT s.uid, min(p.min_t), max(p.max_t) FROM telemetry.eval_pending p "
            "JOIN telemetry.sensors s ON s.id = p.sensor_id GROUP BY s.uid ORDER BY s.uid"
        ).fetchall()


def at(minute: int) -> datetime:
    return datetime.fromtimestamp((T0 + minute * 60_000) / 1000, UTC)


def test_new_readings_are_stored_exactly_with_their_ranges(db_url: str) -> None:
    p = plan(1, [(0, "a", 4.25), (1, "b", -18.5), (2, "a", 5.0), (5, "a", 6.0)], flags=3)
    assert write(db_url, p) == (4, 0, 0, 4)
    assert stored(db_url) == [
        ("a", at(0), 4.25, 3, 1),
        ("a", at(2), 5.0, 3, 3),
        ("a", at(5), 6.0, 3, 4),
        ("b", at(1), -18.5, 3, 2),
    ]
    assert pending(db_url) == [("a", at(0), at(5)), ("b", at(1), at(1))]


def test_a_redelivery_is_absorbed_and_its_new_readings_stored_once(db_url: str) -> None:
    assert write(db_url, plan(1, [(0, "a", 4.0), (1, "a", 4.5)])) == (2, 0, 0, 2)
    # the same two again, plus two new ones: the direct COPY fails, the staged path stores 2
    again = plan(1, [(0, "a", 4.0), (1, "a", 4.5), (2, "a", 5.0), (3, "a", 5.5)])
    assert write(db_url, again) == (2, 2, 0, 4)
    assert [(uid, t, v) for uid, t, v, _f, _s in stored(db_url)] == [
        ("a", at(0), 4.0),
        ("a", at(1), 4.5),
        ("a", at(2), 5.0),
        ("a", at(3), 5.5),
    ]
    assert pending(db_url) == [("a", at(0), at(3))]


def test_a_time_stored_with_another_value_is_a_dead_letter(db_url: str) -> None:
    assert write(db_url, plan(1, [(0, "a", 4.0)])) == (1, 0, 0, 1)
    assert write(db_url, plan(2, [(0, "a", 9.9), (1, "a", 5.0)])) == (1, 1, 1, 3)
    assert [v for _u, _t, v, _f, _s in stored(db_url)] == [4.0, 5.0]
    with psycopg.connect(db_url) as conn:
        (reason,) = conn.execute("SELECT reason FROM telemetry.dead_letters").fetchone() or ("",)
    assert "already stored with another value" in reason


def test_a_duplicate_inside_one_batch_is_stored_once(db_url: str) -> None:
    assert write(db_url, plan(1, [(0, "a", 4.0), (0, "a", 4.0), (1, "a", 4.5)])) == (2, 1, 0, 3)
    assert len(stored(db_url)) == 2
