"""Red team (issue 9): a reading written ahead of the gateway must not silently win.

Readings are immutable and the first one at a (sensor, time) wins; re-deliveries are
absorbed by ``ON CONFLICT DO NOTHING``. Someone with the application role's password
(every service has it) can insert readings for the coming minutes — "4.0 °C" — before
the gateway's arrive: the real ones, an excursion say, were then dropped as duplicates
without a trace, and no alert opened. A reading that arrives for a time already stored
with another value or flags is now a dead letter that says so and keeps the gateway's
value; the stored reading stays as it is (immutable).
"""

from __future__ import annotations

import json

import psycopg
import pytest

from coldtrace.broker import Broker
from tests.integration.ingest_helpers import running_worker, scalar
from tests.mqtt_helpers import T0_MS, batch, gateway_client, publish, wait_until

pytestmark = pytest.mark.timeout(120)

TOPIC = "ct/v1/plant-1/gw-1/readings"
WATERMARK = "SELECT committed_seq FROM telemetry.gateway_streams WHERE gateway_id = 'gw-1'"


def test_a_reading_written_before_the_gateways_is_reported_not_silently_kept(
    broker: Broker, db_url: str
) -> None:
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url):
        publish(pub, TOPIC, batch(1, 1))
        assert wait_until(lambda: scalar(db_url, WATERMARK) == 1)
        sensor = scalar(db_url, "SELECT id FROM telemetry.sensors WHERE uid = 'fridge-a'")
        with psycopg.connect(db_url) as conn:  # the insider, ahead of the gateway
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value)"
                " VALUES (to_timestamp(%s / 1000.0), %s, 4.0)",
                (T0_MS + 2 * 1000, sensor),
            )
        publish(pub, TOPIC, batch(2, 2, value=lambda i: 12.5 if i == 2 else 4.0))
        assert wait_until(lambda: scalar(db_url, WATERMARK) == 3)
    stored = "SELECT value FROM telemetry.readings WHERE sensor_id = %s AND time = %s"
    at = psycopg.connect(db_url).execute("SELECT to_timestamp(%s / 1000.0)", (T0_MS + 2000,))
    when = at.fetchone()[0]
    assert scalar(db_url, stored, (sensor, when)) == 4.0  # immutable: it stays
    letters = scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters")
    assert letters == 1, "the gateway's reading at an already stored time went unreported"
    reason, payload = (
        psycopg.connect(db_url)
        .execute("SELECT reason, payload FROM telemetry.dead_letters")
        .fetchone()
    )
    assert "already stored with another value" in reason
    assert "4.0" in reason
    kept = json.loads(bytes(payload))
    assert kept["value"] == 12.5
    assert kept["sensor"] == "fridge-a"
    assert kept["seq"] == 2
    # the third reading (seq 3) had no conflict and is stored as sent
    assert (
        scalar(db_url, "SELECT count(*) FROM telemetry.readings WHERE sensor_id = %s", (sensor,))
        == 3
    )
