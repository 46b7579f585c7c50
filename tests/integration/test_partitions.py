"""Partitions on a broker without ``$share``: a worker that joins gets its fair share, a
worker that leaves gives its share back (ingest/partitions.py, docs/scaling.md).

In-process workers on a one-node NATS of the test's own; the three-node cluster with
processes and a node killed is test_nats_cluster.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.partitions import PartitionedConsumer
from ingest.settings import IngestSettings
from ingest.worker import Worker
from telemetry.codec import encode
from tests import nats_cluster
from tests.integration.ingest_helpers import scalar
from tests.mqtt_helpers import T0_MS, batch, wait_until

pytestmark = pytest.mark.skipif(
    not nats_cluster.available(),
    reason="nats-server is not installed (Debian package nats-server; scripts/services.sh)",
)

PARTITIONS = ["plant-1/gw-1", "plant-1/gw-2", "plant-1/gw-3", "plant-1/gw-4"]


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[nats_cluster.NatsCluster]:
    cluster = nats_cluster.NatsCluster.create(tmp_path / "nats", size=1)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@contextmanager
def worker(nats: nats_cluster.NatsCluster, db_url: str) -> Iterator[Worker]:
    node = nats.nodes[0]
    settings = IngestSettings(
        mqtt_port=node.mqtt_port,
        mqtt_protocol="3.1.1",
        partitions=PARTITIONS,
        partition_check_s=0.2,
        max_delay_ms=50,
    )
    w = Worker(settings, db_url, clock=lambda: T0_MS / 1000 + 3600)
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    assert w.ready.wait(20), "worker did not start"
    try:
        yield w
    finally:
        stop.set()
        t.join(20)
        assert not t.is_alive(), "worker did not stop"


def held(w: Worker) -> list[str]:
    assert isinstance(w.consumer, PartitionedConsumer)
    return w.consumer.held


def publisher(nats: nats_cluster.NatsCluster) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher")
    c.connect("127.0.0.1", nats.nodes[0].mqtt_port)
    c.loop_start()
    return c


def send(c: mqtt.Client, gw: str, first: int, n: int = 5) -> None:
    payload = batch(first, n, gateway=gw, sensor=f"{gw}-fridge")
    c.publish(f"ct/v1/plant-1/{gw}/readings", encode(payload), qos=1).wait_for_publish(10)


def stored(db_url: str) -> int:
    return int(scalar(db_url, "SELECT count(*) FROM telemetry.readings"))


def test_a_joining_worker_gets_its_share_and_a_leaving_one_gives_it_back(nats, db_url):
    pub = publisher(nats)
    with worker(nats, db_url) as a:
        assert wait_until(lambda: len(held(a)) == 4, timeout=10), held(a)
        with worker(nats, db_url) as b:
            # a gives back what is beyond ceil(4 / 2); b takes it
            assert wait_until(lambda: len(held(a)) == 2 and len(held(b)) == 2, timeout=10), (
                held(a),
                held(b),
            )
            assert set(held(a)).isdisjoint(held(b))
            for i, gw in enumerate(["gw-1", "gw-2", "gw-3", "gw-4"]):
                send(pub, gw, 1 + 5 * i)
            assert wait_until(lambda: stored(db_url) == 20, timeout=15), stored(db_url)
            # each worker stored the gateways of its own partitions
            assert a.totals.stored == 10
            assert b.totals.stored == 10
            b_had = held(b)
        # b left: a holds everything again, and b's gateways are stored by a
        assert wait_until(lambda: len(held(a)) == 4, timeout=10), held(a)
        for gw in b_had:
            send(pub, gw.split("/")[1], 100)
        assert wait_until(lambda: stored(db_url) == 30, timeout=15), stored(db_url)
        assert a.totals.stored == 20
    pub.disconnect()
    pub.loop_stop()


def test_messages_published_while_a_partition_was_unowned_reach_its_next_owner(nats, db_url):
    pub = publisher(nats)
    with worker(nats, db_url) as a:
        assert wait_until(lambda: len(held(a)) == 4, timeout=10)
        send(pub, "gw-1", 1)
        assert wait_until(lambda: stored(db_url) == 5, timeout=15)
    # nobody owns the partitions now: the partition's session keeps what comes
    for first in range(6, 56, 5):
        send(pub, "gw-1", first)
    with worker(nats, db_url) as b:
        assert wait_until(lambda: stored(db_url) == 55, timeout=20), (
            f"{stored(db_url)} of 55: the partition's session did not keep them"
        )
        assert b.totals.stored == 50
    pub.disconnect()
    pub.loop_stop()
