"""Dead letters through real MQTT and PostgreSQL: a bounded prefix, size and hash; one row
per dead letter however often it is re-sent; purged after the retention period."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from coldtrace.broker import Broker
from erp_core.monitoring.service import list_dead_letters
from ingest import dead_letters
from ingest.dead_letters import PURGE_BATCH, PURGE_LOCK, DeadLetter
from tests.integration.ingest_helpers import rows, running_worker, scalar
from tests.mqtt_helpers import T0_MS, batch, gateway_client, publish, wait_until

pytestmark = pytest.mark.timeout(120)

TOPIC = "ct/v1/plant-1/gw-1/readings"


def item(seq: int, value: object) -> dict[str, object]:
    return {
        "t": T0_MS + seq * 1000,
        "sensor": "fridge-a",
        "qty": "temperature",
        "value": value,
        "unit": "Cel",
    }


def batch_doc(first: int, values: list[object]) -> bytes:
    doc = {
        "v": 1,
        "gateway": "gw-1",
        "stream": "s1",
        "seq": [first, first + len(values) - 1],
        "sent": T0_MS,
        "items": [item(first + i, v) for i, v in enumerate(values)],
    }
    return json.dumps(doc).encode()


def test_payload_prefix_size_hash_and_one_row_however_often_resent(
    broker: Broker, db_url: str
) -> None:
    junk = bytes(range(256)) * 20  # 5120 bytes, not JSON
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url, dead_letter_payload_bytes=100):
        for _ in range(4):  # the gateway re-sends what the watermark does not cover
            publish(pub, TOPIC, junk)
        # seq 12 is bad: sent as item 1 of [11..13], re-sent as item 0 of [12..13]
        publish(pub, TOPIC, batch_doc(11, [4.1, "warm", 4.3]))
        publish(pub, TOPIC, batch_doc(12, ["warm", 4.3]))
        assert wait_until(
            lambda: (
                scalar(
                    db_url, "SELECT coalesce(sum(times_received), 0) FROM telemetry.dead_letters"
                )
                == 6
            )
        )
        assert wait_until(lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == 2)

    (whole, bad_item) = rows(
        db_url,
        "SELECT payload, payload_size, payload_sha256, times_received, seq, item_index, reason,"
        " last_received_at >= received_at FROM telemetry.dead_letters ORDER BY id",
    )
    assert bytes(whole[0]) == junk[:100]
    assert whole[1] == 5120
    assert bytes(whole[2]) == hashlib.sha256(junk).digest()
    assert whole[3] == 4
    assert whole[4] is None
    assert whole[7] is True
    assert bad_item[3] == 2  # one row for seq 12, re-sent in another position
    assert (bad_item[4], bad_item[5]) == (12, 1)  # the position it was first seen at
    assert "value" in bad_item[6]
    assert (
        scalar(db_url, "SELECT committed_seq FROM telemetry.gateway_streams") == 0
    )  # 1..10 unsent

    # the API and the UI read the whole size, the hash and the count
    with psycopg.connect(db_url) as conn:
        shown = {d.seq: d for d in list_dead_letters(conn, limit=10)}
    assert shown[None].payload_bytes == 5120
    assert shown[None].payload_truncated is True
    assert shown[None].payload_sha256 == hashlib.sha256(junk).hexdigest()
    assert shown[None].times_received == 4
    assert shown[12].times_received == 2


def test_prefix_of_zero_keeps_only_size_and_hash(broker: Broker, db_url: str) -> None:
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url, dead_letter_payload_bytes=0):
        publish(pub, TOPIC, b"not json at all")
        assert wait_until(
            lambda: scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 1
        )
    assert rows(db_url, "SELECT payload, payload_size FROM telemetry.dead_letters") == [(b"", 15)]


def _old_and_new(conn: psycopg.Connection, *, old: int, new: int) -> None:
    for n, age in ((old, timedelta(days=40)), (new, timedelta(days=1))):
        conn.execute(
            "INSERT INTO telemetry.dead_letters (topic, reason, payload, payload_size,"
            " payload_sha256, dedupe_key, received_at, last_received_at)"
            " SELECT 't', 'r', '', 0, sha256(''), %s || i, now() - %s, now() - %s"
            " FROM generate_series(1, %s) AS i",
            (f"k{age.days}-", age, age, n),
        )


def test_purge_deletes_only_what_is_past_retention_in_batches(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        _old_and_new(conn, old=PURGE_BATCH + 7, new=3)
        before = datetime.now(UTC) - timedelta(days=30)
        with psycopg.connect(db_url) as other:  # another worker purging right now
            other.execute("SELECT pg_advisory_xact_lock(%s, %s)", PURGE_LOCK)
            assert dead_letters.purge(conn, before=before) is None
        # a backlog goes in rounds, so the writer is not held up for long
        assert dead_letters.purge(conn, before=before, max_batches=1) == PURGE_BATCH
        assert dead_letters.purge(conn, before=before) == 7
        assert scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 3
        assert dead_letters.purge(conn, before=before) == 0


def test_a_resent_dead_letter_stays_while_it_keeps_arriving(db_url: str) -> None:
    letter = DeadLetter(TOPIC, "not valid JSON", b"junk")
    with psycopg.connect(db_url) as conn:
        with conn.transaction():
            assert dead_letters.write(conn, [letter], payload_bytes=10) == 1
        conn.execute(
            "UPDATE telemetry.dead_letters SET received_at = now() - interval '40 days',"
            " last_received_at = now() - interval '40 days'"
        )
        conn.commit()
        with conn.transaction():  # re-sent today
            assert dead_letters.write(conn, [letter, letter], payload_bytes=10) == 0
        assert dead_letters.purge(conn, before=datetime.now(UTC) - timedelta(days=30)) == 0
    assert scalar(db_url, "SELECT times_received FROM telemetry.dead_letters") == 3


def test_the_worker_purges_on_its_own(broker: Broker, db_url: str) -> None:
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(
        broker,
        db_url,
        clock=None,  # the real clock: retention is measured against the database's now()
        dead_letter_retention_days=30,
        dead_letter_purge_interval_s=0.2,
    ) as (worker, _):
        publish(pub, TOPIC, batch(1, 5))  # the purge shares the writer's connection
        assert wait_until(lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == 5)
        with psycopg.connect(db_url, autocommit=True) as conn:
            _old_and_new(conn, old=5, new=2)
        assert wait_until(
            lambda: scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters") == 2
        )
        time.sleep(0.5)
        purged = worker.metrics.registry.get_sample_value(
            "coldtrace_ingest_dead_letters_purged_total"
        )
        assert purged == 5
