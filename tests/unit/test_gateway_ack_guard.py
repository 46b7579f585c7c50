"""The gateway never deletes on an ack for seqs it never assigned (issue 9).

A forged retained ``…/ack/{stream}`` with a huge watermark used to delete the whole
outbox; and an outbox restored from a backup numbers new readings with seqs ingest has
already committed, so their acks would delete them unsent. The gateway now ignores such
an ack, counts it in its state, and re-sends what it holds under a new stream id.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.streams import build_batch
from telemetry.codec import decode_batch, encode
from telemetry.payloads import VERSION, Ack, Reading, Status
from telemetry.topics import Kind

T0 = 1_764_000_000_000


def config(path: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw-1", "site": "plant-1"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": str(path)},
        }
    )


def readings(start: int, n: int) -> list[Reading]:
    return [
        Reading(t=T0 + i * 1000, sensor="fridge-1", qty="temperature", value=i / 10, unit="Cel")
        for i in range(start, start + n)
    ]


def ack(stream: str, committed: int) -> bytes:
    return encode(Ack(v=VERSION, gateway="gw-1", stream=stream, committed=committed, t=T0))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_ack_beyond_the_last_assigned_seq_deletes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox.open(path) as box:
        box.append(readings(0, 62))
        old_stream = box.stream
        pub = Publisher(config(path), box, monotonic=Clock())
        # the forged ack of the issue: one retained message, watermark far ahead
        assert pub.apply_ack(ack(old_stream, 1_000_000), retained=True) == 0
        assert pub.flush() == 0
        assert box.depth() == 62, "the forged ack deleted unsent readings"
        assert pub.state(Status.ONLINE).ignored_acks == 1
        # the readings go out again under a new stream, numbered from 1
        assert box.stream != old_stream
        assert (box.first_seq(), box.last_seq()) == (1, 62)
        assert [r for _, r in box.read_from(1, 100)] == readings(0, 62)
        # the old stream's acks no longer touch the outbox, even a plausible one
        assert pub.apply_ack(ack(old_stream, 10)) == 0
        assert pub.flush() == 0
        assert box.depth() == 62


def test_new_stream_is_sent_from_seq_1_and_acked_normally(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox.open(path) as box:
        box.append(readings(0, 10))
        pub = Publisher(config(path), box, monotonic=Clock())
        pub.apply_ack(ack(box.stream, 8))  # seqs 1..8 stored by ingest
        pub.apply_ack(ack(box.stream, 50))  # then a bogus one
        assert box.depth() == 2, "what ingest had committed is deleted, the rest is kept"
        batch = decode_batch(next_batch(box), now_ms=T0 + 60_000)
        assert (batch.stream, batch.seq_first, batch.seq_last) == (box.stream, 1, 2)
        assert [r.value for _, r in batch.readings] == [0.8, 0.9]
        assert pub.apply_ack(ack(box.stream, 2)) >= 0
        pub.flush()
        assert box.depth() == 0


def next_batch(box: Outbox) -> bytes:
    """What the publisher sends next: the held readings from the oldest, as one batch."""
    rows = box.read_from(box.first_seq(), 100)
    return encode(build_batch(rows, gateway="gw-1", stream=box.stream, sent_ms=T0))


def test_a_restored_outbox_starts_a_new_stream_instead_of_losing_new_readings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.sqlite"
    backup = tmp_path / "backup.sqlite"
    with Outbox.open(path) as box:
        box.append(readings(0, 20))
        stream = box.stream
        box.close()
        shutil.copy(path, backup)  # the nightly backup: seqs 1..20, none sent yet
    with Outbox.open(path) as box:
        box.append(readings(20, 30))  # 21..50 after the backup
        pub = Publisher(config(path), box, monotonic=Clock())
        pub.apply_ack(ack(stream, 50))  # ingest stored all 50
        pub.flush()
        assert box.depth() == 0
    # the disk is replaced and the backup restored: seqs 21.. would be numbered again
    shutil.copy(backup, path)
    with Outbox.open(path) as box:
        pub = Publisher(config(path), box, monotonic=Clock())
        box.append(readings(100, 5))  # new readings get seqs 21..25 under the old id
        assert box.last_seq() == 25
        # ingest's retained watermark (50) arrives when the gateway connects
        assert pub.apply_ack(ack(stream, 50), retained=True) == 0
        pub.flush()
        held = [r for _, r in box.read_from(1, 100)]
        assert held == readings(0, 20) + readings(100, 5), "new readings were deleted unsent"
        assert box.stream != stream
        assert pub.state(Status.ONLINE).ignored_acks == 1


def test_event_streams_restart_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    with Outbox.open(path) as box:
        items = [b'{"t":1,"reader":"r","antenna":0,"epc":"AA"}'] * 7
        box.append_events(Kind.TAGS, items)
        pub = Publisher(config(path), box, monotonic=Clock())
        tags = box.event_stream(Kind.TAGS)
        pub.apply_ack(ack(tags, 3))
        pub.apply_ack(ack(tags, 99))
        assert box.event_depth(Kind.TAGS) == 4
        assert box.event_stream(Kind.TAGS) != tags
        assert (box.event_first_seq(Kind.TAGS), box.event_last_seq(Kind.TAGS)) == (1, 4)
        assert pub.committed_of(Kind.TAGS) == 0
        assert pub.ignored_acks == 1
