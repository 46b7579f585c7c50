"""Ingest against a real Mosquitto and PostgreSQL: store, dedupe, dead-letter, watermark."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from coldtrace.broker import Broker
from ingest.worker import Worker
from telemetry.codec import decode_ack
from tests.integration.ingest_helpers import running_worker
from tests.mqtt_helpers import (
    T0_MS,
    Collector,
    batch,
    gateway_client,
    ingest_settings,
    publish,
    wait_until,
)

TOPIC = "ct/v1/plant-1/gw-1/readings"


def count(db_url: str, sql: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture
def worker(broker: Broker, db_url: str) -> Iterator[Worker]:
    settings = ingest_settings(broker, client_id="ingest-test", max_delay_ms=50)
    w = Worker(settings, db_url, clock=lambda: T0_MS / 1000 + 3600)
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    assert w.ready.wait(15), "worker did not subscribe"
    yield w
    stop.set()
    t.join(15)
    assert not t.is_alive(), "worker did not stop"


def test_batches_are_stored_once_and_watermark_published(broker, db_url, worker):
    acks = Collector(broker, "ct/v1/plant-1/gw-1/ack/#")
    pub = gateway_client(broker)
    for first in range(1, 1001, 100):
        publish(pub, TOPIC, batch(first, 100))
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 1000)
    assert acks.wait_for(lambda ps: ps and decode_ack(ps[-1]).committed == 1000)

    # the same batch again adds nothing
    publish(pub, TOPIC, batch(1, 100))
    assert wait_until(lambda: worker.totals.duplicates == 100)
    assert count(db_url, "SELECT count(*) FROM telemetry.readings") == 1000
    # values arrived intact: seq n has value 4.0 + (n % 10) / 10 at T0 + n s
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT gateway_seq, value, extract(epoch FROM time) * 1000 FROM telemetry.readings"
        ).fetchall()
    for seq, value, t_ms in rows:
        assert value == pytest.approx(4.0 + (seq % 10) / 10)
        assert int(t_ms) == T0_MS + seq * 1000
    acks.close()


def test_malformed_message_is_dead_lettered_and_good_ones_flow(broker, db_url, worker):
    pub = gateway_client(broker)
    publish(pub, TOPIC, batch(1, 10))
    publish(pub, TOPIC, b'{"v": 1, "gateway": "gw-1", "items": "oops"')  # truncated JSON
    publish(pub, TOPIC, b'{"v": 7, "gateway": "gw-1"}')
    bad_item = batch(11, 3).items[1]
    good = batch(11, 3)
    raw = (
        b'{"v":1,"gateway":"gw-1","stream":"s1","seq":[11,13],"sent":1,"items":['
        + b",".join(
            [
                f'{{"t":{good.items[0].t},"sensor":"fridge-a","qty":"temperature","value":4.1,"unit":"Cel"}}'.encode(),
                f'{{"t":{bad_item.t},"sensor":"fridge-a","qty":"temperature","value":"warm","unit":"Cel"}}'.encode(),
                f'{{"t":{good.items[2].t},"sensor":"fridge-a","qty":"temperature","value":4.3,"unit":"Cel"}}'.encode(),
            ]
        )
        + b"]}"
    )
    publish(pub, TOPIC, raw)
    publish(pub, TOPIC, batch(14, 10))
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 22)
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 3)
    with psycopg.connect(db_url) as conn:
        letters = conn.execute(
            "SELECT reason, payload, seq FROM telemetry.dead_letters ORDER BY id"
        ).fetchall()
        committed = conn.execute("SELECT committed_seq FROM telemetry.gateway_streams").fetchone()
    reasons = [r[0] for r in letters]
    assert "not valid JSON" in reasons[0]
    assert "unknown wire version 7" in reasons[1]
    assert "item 1" in reasons[2]
    assert "value" in reasons[2]
    assert bytes(letters[0][1]).startswith(b'{"v": 1')
    assert letters[2][2] == 12  # the rejected item's own seq
    # the rejected item does not hold the watermark back
    assert committed == (23,)


def test_reading_from_the_far_future_is_rejected_with_reason(broker, db_url, worker):
    pub = gateway_client(broker)
    future = batch(1, 1, t0_ms=T0_MS + 86_400_000)  # worker clock is T0 + 1 h
    publish(pub, TOPIC, future)
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 1)
    with psycopg.connect(db_url) as conn:
        (reason,) = conn.execute("SELECT reason FROM telemetry.dead_letters").fetchone()
    assert "in the future" in reason


def test_ingest_resumes_after_database_outage(broker, db_url, worker):
    pub = gateway_client(broker)
    publish(pub, TOPIC, batch(1, 50))
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 50)
    # kill the worker's connection; the next flush must reconnect and still store
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    time.sleep(0.2)
    publish(pub, TOPIC, batch(51, 50))
    assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 100)


def test_a_read_only_database_is_waited_out_not_dead_lettered(
    broker, db_url, owner_db_url, superuser_db_url
):
    # A database that refuses writes for a while (a failover to a standby, a DBA's
    # default_transaction_read_only) used to count as "the database rejected this batch":
    # the worker wrote it message by message, its dead letter failed too, and the writer
    # thread died — or, were the database back in between, the readings became dead letters.
    dbname = owner_db_url.rsplit("/", 1)[1]
    pub = gateway_client(broker)
    with running_worker(broker, db_url) as (w, _):
        publish(pub, TOPIC, batch(1, 50))
        assert wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 50)
        with psycopg.connect(owner_db_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
        with psycopg.connect(superuser_db_url, autocommit=True) as conn:
            conn.execute(  # sessions read the setting when they start
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        publish(pub, TOPIC, batch(51, 50))
        time.sleep(2)
        with psycopg.connect(owner_db_url, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = off")  # this session's own
            conn.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
        assert wait_until(
            lambda: count(db_url, "SELECT count(*) FROM telemetry.readings") == 100, timeout=40
        )
        assert count(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 0
        assert w.totals.dead_letters == 0
