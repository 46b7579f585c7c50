"""Each outbox stream's committed watermark is retained on its own topic and survives a restart.

A gateway holds three streams (readings, tags, scans). Ingest publishes each stream's
watermark retained on ``…/ack/{stream}``; a gateway that restarts with all three
streams still in its outbox must learn all three watermarks from the retained
messages alone (ingest is stopped, so nothing fresh arrives) and delete what was
committed, over its single MQTT connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from coldtrace.broker import Broker
from gateway.app import run_gateway
from gateway.config import GatewayConfig
from gateway.health import HealthState
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.streams import build_batch, build_event_batch
from ingest.worker import Worker
from telemetry.codec import decode_ack, encode
from telemetry.payloads import Reading, ScanItem, TagItem
from telemetry.topics import Kind, Topic, ack_filter
from tests.mqtt_helpers import Collector, gateway_client, gateway_mqtt, ingest_settings, publish

pytestmark = pytest.mark.timeout(90)


def decode_state_health(payload: bytes) -> HealthState:
    return msgspec.json.decode(payload, type=HealthState)


SITE, GATEWAY = "plant-1", "gw-acks"


def _items(now_ms: int) -> tuple[list[Reading], list[TagItem], list[ScanItem]]:
    readings = [
        Reading(
            t=now_ms - 60_000 + i * 1000,
            sensor="fridge-a",
            qty="temperature",
            value=4.0 + i / 10,
            unit="Cel",
        )
        for i in range(12)
    ]
    tags = [
        TagItem(t=now_ms - 5_000 + i, reader="door-1", antenna=1, epc=f"3074257BF7194E40000{i:05X}")
        for i in range(3)
    ]
    scans = [
        ScanItem(
            t=now_ms - 4_000 + i,
            scanner="dock-1",
            data=f"not-a-label-{i}",
            ok=False,
            reason="no scheme",
        )
        for i in range(5)
    ]
    return readings, tags, scans


def _send_everything_once(broker: Broker, box: Outbox, now_ms: int) -> dict[Kind, str]:
    """Publish every stream of ``box`` once, as a gateway killed before any delete would have."""
    c = gateway_client(broker, SITE, GATEWAY)
    try:
        rows = box.read_from(1, 1000)
        publish(
            c,
            str(Topic.build(SITE, GATEWAY, Kind.READINGS)),
            encode(build_batch(rows, gateway=GATEWAY, stream=box.stream, sent_ms=now_ms)),
        )
        streams = {Kind.READINGS: box.stream}
        for kind in (Kind.TAGS, Kind.SCANS):
            streams[kind] = box.event_stream(kind)
            batch = build_event_batch(
                kind,
                box.read_events(kind, 1, 1000),
                gateway=GATEWAY,
                stream=streams[kind],
                sent_ms=now_ms,
            )
            publish(c, str(Topic.build(SITE, GATEWAY, kind)), encode(batch))
    finally:
        c.loop_stop()
        c.disconnect()
    return streams


@contextlib.contextmanager
def _ingest_worker(broker: Broker, db_url: str) -> Iterator[None]:
    """Run a real ingest worker for the duration of the block, then stop it."""
    settings = ingest_settings(broker, client_id=f"ingest-{uuid.uuid4().hex[:8]}", max_delay_ms=50)
    worker = Worker(settings, db_url)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(15), "worker did not subscribe"
        yield
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()


def _sent_and_committed_before_a_crash(broker: Broker, db_url: str, path: Path) -> dict[Kind, int]:
    """Fill an outbox, have real ingest store and ack all of it, delete nothing ("crash").

    Return each stream's item count, which is also its committed watermark.
    """
    now_ms = int(time.time() * 1000)
    readings, tags, scans = _items(now_ms)
    with Outbox.open(path) as box:
        box.append(readings)
        box.append_events(Kind.TAGS, [encode(t) for t in tags])
        box.append_events(Kind.SCANS, [encode(s) for s in scans])
        expected = {box.stream: len(readings)}
        acks = Collector(broker, ack_filter(SITE, GATEWAY))

        def all_acked(payloads: list[bytes]) -> bool:
            return {(a := decode_ack(p)).stream: a.committed for p in payloads} == expected

        with _ingest_worker(broker, db_url):  # ingest stores, commits, acks; then it is gone
            streams = _send_everything_once(broker, box, now_ms)
            expected |= {streams[Kind.TAGS]: len(tags), streams[Kind.SCANS]: len(scans)}
            assert acks.wait_for(all_acked, timeout=30), "ingest did not ack every stream"
        assert box.depth() == len(readings)  # nothing was deleted before the "crash"

    # a late subscriber sees one retained watermark per stream, each on its own topic
    retained = Collector(broker, ack_filter(SITE, GATEWAY))
    assert retained.wait_for(lambda ps: len(ps) == 3, timeout=10)
    assert {decode_ack(p).stream: decode_ack(p).committed for p in retained.payloads} == expected
    acks.close()
    retained.close()
    return {Kind.READINGS: len(readings), Kind.TAGS: len(tags), Kind.SCANS: len(scans)}


def _config(broker: Broker, path: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": GATEWAY, "site": SITE},
            "mqtt": gateway_mqtt(broker, SITE, GATEWAY, reconnect_max_s=1),
            "outbox": {"path": str(path), "resend_after_s": 30},
            "state_interval_s": 0.2,
        }
    )


def test_restarted_publisher_learns_every_streams_watermark_from_retained_acks(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite"
    counts = _sent_and_committed_before_a_crash(broker, db_url, path)
    cfg = _config(broker, path)

    async def restart() -> dict[Kind, int]:
        with Outbox.open(path) as box:
            publisher = Publisher(cfg, box)
            assert {
                k: publisher.committed_of(k) for k in (Kind.READINGS, Kind.TAGS, Kind.SCANS)
            } == {
                Kind.READINGS: 0,
                Kind.TAGS: 0,
                Kind.SCANS: 0,
            }
            stop = asyncio.Event()
            task = asyncio.create_task(publisher.run(stop))
            deadline = time.monotonic() + 15
            while any(publisher.committed_of(k) < n for k, n in counts.items()):
                assert time.monotonic() < deadline, "the retained watermarks did not arrive"
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.wait_for(task, 15)
            learned = {k: publisher.committed_of(k) for k in (Kind.READINGS, Kind.TAGS, Kind.SCANS)}
            depths = (box.depth(), box.event_depth(Kind.TAGS), box.event_depth(Kind.SCANS))
            assert depths == (0, 0, 0), "committed items must be deleted on the retained acks"
            return learned

    assert asyncio.run(restart()) == counts


def test_restarted_gateway_deletes_every_stream_on_the_retained_acks_alone(
    broker: Broker, db_url: str, tmp_path: Path
) -> None:
    """The same with the whole gateway (`run_gateway`), ingest still gone."""
    path = tmp_path / "outbox.sqlite"
    counts = _sent_and_committed_before_a_crash(broker, db_url, path)
    states = Collector(broker, str(Topic.build(SITE, GATEWAY, Kind.STATE)))

    def depths() -> dict[Kind, int]:
        with Outbox.open(path) as box:
            return {k: box.depth() if k is Kind.READINGS else box.event_depth(k) for k in counts}

    async def restart() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_gateway(_config(broker, path), stop=stop))
        try:
            deadline = time.monotonic() + 15
            while any(depths().values()):
                assert time.monotonic() < deadline, f"outbox still holds {depths()}"
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)

    asyncio.run(restart())
    assert depths() == dict.fromkeys(counts, 0)
    last = decode_state_health(states.payloads[-1])
    assert (last.committed, last.outbox_depth) == (counts[Kind.READINGS], 0)
    states.close()
