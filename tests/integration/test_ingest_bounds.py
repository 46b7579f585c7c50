"""Ingest's bounds through real MQTT: the intake never grows past its limits, QoS 1 is never
dropped for it, and reading flags keep their full 16 bits."""

from __future__ import annotations

import threading

import psycopg
import pytest

from coldtrace.broker import Broker
from telemetry.codec import encode
from telemetry.payloads import VERSION, Reading, ReadingBatch
from tests.integration.ingest_helpers import rows, running_worker, scalar
from tests.mqtt_helpers import T0_MS, batch, gateway_client, publish, wait_until

pytestmark = pytest.mark.timeout(180)

TOPIC = "ct/v1/plant-1/gw-1/readings"


def test_flags_keep_all_sixteen_bits(broker: Broker, db_url: str) -> None:
    flags = [0, 1, 32767, 32768, 40000, 65535]
    items = [
        Reading(t=T0_MS + i * 1000, sensor="door-1", qty="door", value=0, unit="1", flags=f)
        for i, f in enumerate(flags)
    ]
    payload = ReadingBatch(
        v=VERSION, gateway="gw-1", stream="s1", seq=(1, len(items)), sent=T0_MS, items=items
    )
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url):
        publish(pub, TOPIC, encode(payload))
        assert wait_until(
            lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == len(flags)
        )
    stored = rows(db_url, "SELECT flags FROM telemetry.readings ORDER BY time")
    assert [f for (f,) in stored] == flags


def test_qos1_through_a_tiny_intake_loses_nothing(broker: Broker, db_url: str) -> None:
    """paho's network thread waits for room (it never drops QoS 1), and acks still flow."""
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(
        broker, db_url, intake_max_messages=3, intake_max_bytes=4096, max_messages=2
    ) as (worker, _):
        for first in range(1, 3001, 10):
            publish(pub, TOPIC, batch(first, 10))
        assert wait_until(
            lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == 3000, timeout=90
        )
        assert wait_until(
            lambda: scalar(db_url, "SELECT committed_seq FROM telemetry.gateway_streams") == 3000
        )
        assert worker.consumer.inbox.dropped == 0


def test_qos0_flood_is_bounded_dropped_and_counted_while_qos1_gets_through(
    broker: Broker, db_url: str
) -> None:
    flood = 3000
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url, intake_max_messages=40, intake_max_bytes=10**6) as (
        worker,
        thread,
    ):
        intake = worker.consumer.inbox
        depth: list[int] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                depth.append(len(intake))
                sampling.wait(0.001)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # hold the worker's writes, as a slow database would: the intake fills
        with psycopg.connect(db_url) as blocker:
            blocker.execute("LOCK TABLE telemetry.dead_letters IN ACCESS EXCLUSIVE MODE")
            for i in range(flood):  # unique junk, so none of it dedupes
                info = pub.publish(TOPIC, f"junk {i:06d} ".encode() * 50, qos=0)
            info.wait_for_publish(30)
            publish(pub, TOPIC, batch(1, 10))  # real data, QoS 1, in the middle of it
            assert wait_until(lambda: intake.dropped > 0, timeout=30)
            blocker.rollback()
        assert wait_until(lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == 10)
        # every flood message the worker took is dead-lettered; the others were counted
        # as dropped (and none went missing in between, or the broker dropped them)
        letters = lambda: scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters")  # noqa: E731
        assert wait_until(lambda: letters() + 1 == intake.taken, timeout=60), (
            letters(),
            intake.taken,
        )
        assert intake.taken + intake.dropped <= flood + 1
        assert intake.dropped > flood / 2
        sampling.set()
        sampler.join(5)
        assert max(depth) <= 40
        dropped = worker.metrics.registry.get_sample_value("coldtrace_ingest_intake_dropped_total")
        assert dropped == intake.dropped
        assert thread.is_alive()
