"""Red team (issue 9): one stolen gateway credential must not create sensors without end.

Every new (uid, quantity) a gateway reports became a ``telemetry.sensors`` row and an
entry of the worker's in-memory sensor cache, for ever: a batch carries up to 10,000
items, each may name a new uid, so one credential made 10,000 sensors per message —
disk and worker memory without bound. A gateway now has at most
``COLDTRACE_INGEST_MAX_SENSORS_PER_GATEWAY`` sensors; readings of further new sensors
are not stored, and that is one dead letter per gateway (counted), not one per reading.
Other gateways, and the gateway's known sensors, go on.
"""

from __future__ import annotations

import pytest

from coldtrace.broker import Broker
from telemetry.payloads import VERSION, Reading, ReadingBatch
from tests.integration.ingest_helpers import running_worker, scalar
from tests.mqtt_helpers import T0_MS, gateway_client, publish, wait_until

pytestmark = pytest.mark.timeout(120)

LIMIT = 5


def many_sensors(gateway: str, first: int, uids: list[str]) -> ReadingBatch:
    items = [
        Reading(t=T0_MS + first * 1000, sensor=uid, qty="temperature", value=4.0, unit="Cel")
        for uid in uids
    ]
    return ReadingBatch(
        v=VERSION,
        gateway=gateway,
        stream="s1",
        seq=(first, first + len(items) - 1),
        sent=T0_MS,
        items=items,
    )


def test_a_gateway_cannot_create_sensors_beyond_its_limit(broker: Broker, db_url: str) -> None:
    thief = gateway_client(broker, "plant-1", "gw-stolen")
    honest = gateway_client(broker, "plant-1", "gw-honest")
    with running_worker(broker, db_url, max_sensors_per_gateway=LIMIT):
        topic = "ct/v1/plant-1/gw-stolen/readings"
        publish(thief, topic, many_sensors("gw-stolen", 1, [f"known-{i}" for i in range(3)]))
        flood = [f"fake-{i}" for i in range(200)]
        publish(thief, topic, many_sensors("gw-stolen", 4, flood[:100]))
        publish(thief, topic, many_sensors("gw-stolen", 104, flood[100:]))
        # the known sensors keep working after the limit is reached
        publish(thief, topic, many_sensors("gw-stolen", 204, [f"known-{i}" for i in range(3)]))
        honest_topic = "ct/v1/plant-1/gw-honest/readings"
        publish(honest, honest_topic, many_sensors("gw-honest", 1, ["fridge-1", "fridge-2"]))
        assert wait_until(
            lambda: (
                scalar(
                    db_url,
                    "SELECT committed_seq FROM telemetry.gateway_streams"
                    " WHERE gateway_id = 'gw-stolen'",
                )
                == 206
                and scalar(
                    db_url,
                    "SELECT count(*) FROM telemetry.readings r JOIN telemetry.sensors s"
                    " ON s.id = r.sensor_id WHERE s.gateway_id = 'gw-honest'",
                )
                == 2
            )
        )
    sensors = "SELECT count(*) FROM telemetry.sensors WHERE gateway_id = %s"
    assert scalar(db_url, sensors, ("gw-stolen",)) == LIMIT
    assert scalar(db_url, sensors, ("gw-honest",)) == 2
    stolen_readings = (
        "SELECT count(*) FROM telemetry.readings r JOIN telemetry.sensors s"
        " ON s.id = r.sensor_id WHERE s.gateway_id = 'gw-stolen'"
    )
    assert scalar(db_url, stolen_readings) == 3 + 2 + 3  # 3 known, 2 up to the limit, 3 again
    count = scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters")
    assert count == 1, "one dead letter for the gateway, not one per refused reading"
    reason = scalar(
        db_url, "SELECT reason FROM telemetry.dead_letters WHERE gateway_id = %s", ("gw-stolen",)
    )
    assert "limit of 5 sensors" in reason
