"""The outbox's three streams as the publisher sees them, and their per-stream ack topics."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from gateway.config import GatewayConfig
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.streams import CONFIRM_AFTER_S, CONFIRM_EVERY, STREAM_KINDS, OutboxStream
from telemetry.codec import decode_batch, decode_scans, encode
from telemetry.payloads import VERSION, Ack, Reading, ScanItem
from telemetry.topics import Kind, TopicError, ack_filter, ack_topic

T0 = 1_764_000_000_000


def open_stream(box: Outbox, kind: str, *, max_unconfirmed: int = 1000) -> OutboxStream:
    return OutboxStream.open(box, kind, resend_after_s=10, max_unconfirmed=max_unconfirmed, now=0.0)  # type: ignore[arg-type]


def test_each_kind_is_its_own_stream_with_its_own_batches(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite") as box:
        box.append(
            [
                Reading(t=T0 + i, sensor="s", qty="temperature", value=i, unit="Cel")
                for i in range(5)
            ]
        )
        scans = [
            ScanItem(t=T0 + i, scanner="d", data=f"x{i}", ok=False, reason="r") for i in range(3)
        ]
        box.append_events(Kind.SCANS, [encode(s) for s in scans])
        streams = {kind: open_stream(box, kind) for kind in STREAM_KINDS}
        assert len({s.id for s in streams.values()}) == 3
        assert streams[Kind.READINGS].id == box.stream

        payload, last = streams[Kind.READINGS].next_batch(2, gateway="gw", sent_ms=T0) or (b"", 0)
        batch = decode_batch(payload, now_ms=T0)
        assert (batch.seq_first, batch.seq_last, last, batch.stream) == (1, 2, 2, box.stream)
        scan_payload, scan_last = streams[Kind.SCANS].next_batch(10, gateway="gw", sent_ms=T0) or (
            b"",
            0,
        )
        decoded = decode_scans(scan_payload, now_ms=T0)
        assert [item for _, item in decoded.items] == scans
        assert scan_last == 3
        assert streams[Kind.TAGS].next_batch(10, gateway="gw", sent_ms=T0) is None


def test_window_room_limits_a_batch(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite") as box:
        box.append(
            [
                Reading(t=T0 + i, sensor="s", qty="temperature", value=1, unit="Cel")
                for i in range(9)
            ]
        )
        stream = open_stream(box, Kind.READINGS, max_unconfirmed=4)
        _, last = stream.next_batch(100, gateway="gw", sent_ms=T0) or (b"", 0)
        assert last == 4
        stream.window.sent(last, 0.0)
        assert stream.next_batch(100, gateway="gw", sent_ms=T0) is None  # paused for the watermark


def test_deletes_are_coalesced_unless_forced(tmp_path: Path) -> None:
    with Outbox.open(tmp_path / "o.sqlite") as box:
        box.append_events(Kind.TAGS, [b'{"t":1,"reader":"r","antenna":0,"epc":"AA"}'] * 10)
        stream = open_stream(box, Kind.TAGS)
        stream.window.sent(10, 0.0)
        stream.window.acked(6, 0.1)
        assert stream.confirm(0.5, force=False) == 0  # fewer than CONFIRM_EVERY, too soon
        assert box.event_depth(Kind.TAGS) == 10
        assert stream.confirm(CONFIRM_AFTER_S, force=False) == 6
        stream.window.acked(10, 1.2)
        assert stream.confirm(1.3, force=True) == 4
        assert box.event_depth(Kind.TAGS) == 0
        assert CONFIRM_EVERY > 10


@given(st.text("ABCxyz019_-", min_size=1, max_size=64))
def test_every_streams_ack_topic_is_under_the_gateways_filter(stream: str) -> None:
    topic = ack_topic("plant-1", "gw-1", stream)
    assert topic == f"ct/v1/plant-1/gw-1/ack/{stream}"
    assert topic_matches_sub(ack_filter("plant-1", "gw-1"), topic)
    assert not topic_matches_sub(ack_filter("plant-1", "gw-2"), topic)


def test_the_filter_also_matches_the_single_ack_topic_of_older_ingest() -> None:
    assert topic_matches_sub(ack_filter("plant-1", "gw-1"), "ct/v1/plant-1/gw-1/ack")


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x" * 65])
def test_a_stream_id_that_is_no_topic_level_is_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        ack_topic("plant-1", "gw-1", bad)


def test_an_ack_deletes_only_from_its_own_stream(tmp_path: Path) -> None:
    """A tags watermark never deletes readings, nor an old stream's watermark new data."""

    def ack(stream: str, committed: int) -> bytes:
        return encode(Ack(v=VERSION, gateway="gw", stream=stream, committed=committed, t=T0))

    cfg = GatewayConfig.model_validate(
        {
            "gateway": {"id": "gw", "site": "s"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": str(tmp_path / "o.sqlite")},
        }
    )
    with Outbox.open(tmp_path / "o.sqlite") as box:
        box.append(
            [
                Reading(t=T0 + i, sensor="s", qty="temperature", value=1, unit="Cel")
                for i in range(5)
            ]
        )
        box.append_events(Kind.TAGS, [b'{"t":1,"reader":"r","antenna":0,"epc":"AA"}'] * 5)
        pub = Publisher(cfg, box)
        tags = box.event_stream(Kind.TAGS)
        pub.apply_ack(ack(tags, 5))
        pub.apply_ack(ack("an-old-stream-id", 5))  # e.g. before the outbox was replaced
        pub.flush()
        assert (box.depth(), box.event_depth(Kind.TAGS)) == (5, 0)
        assert (pub.committed_of(Kind.READINGS), pub.committed_of(Kind.TAGS)) == (0, 5)
