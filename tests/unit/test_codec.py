"""The wire codec: round trips (hypothesis) and every rejection names its reason."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.codec import (
    MAX_ITEMS,
    MAX_PAYLOAD_BYTES,
    DecodeError,
    decode_ack,
    decode_batch,
    decode_state,
    encode,
)
from telemetry.payloads import (
    VERSION,
    Ack,
    GatewayState,
    Reading,
    ReadingBatch,
    SourceState,
    Status,
)
from telemetry.topics import Kind, Topic, TopicError, subscription

NOW = 1_764_000_000_000
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}", fullmatch=True)
sensors = st.from_regex(r"[!-~]{1,40}", fullmatch=True)
units = st.sampled_from([("temperature", "Cel"), ("humidity", "%"), ("battery", "V")])
readings = st.builds(
    lambda t, s, qu, v, f: Reading(t=t, sensor=s, qty=qu[0], value=v, unit=qu[1], flags=f),
    st.integers(946_684_800_000, NOW),
    sensors,
    units,
    st.floats(-50, 150, allow_nan=False),
    st.integers(0, 65535),
)


@st.composite
def batches(draw: st.DrawFn) -> ReadingBatch:
    items = draw(st.lists(readings, min_size=1, max_size=50))
    first = draw(st.integers(1, 2**40))
    return ReadingBatch(
        v=VERSION,
        gateway=draw(ids),
        stream=draw(st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True)),
        seq=(first, first + len(items) - 1),
        sent=draw(st.integers(0, NOW)),
        items=items,
    )


@given(batches())
def test_batch_round_trip(batch: ReadingBatch) -> None:
    decoded = decode_batch(encode(batch), now_ms=NOW)
    assert decoded.rejected == []
    assert decoded.gateway == batch.gateway
    assert decoded.stream == batch.stream
    assert (decoded.seq_first, decoded.seq_last) == batch.seq
    assert [r for _, r in decoded.readings] == batch.items
    assert [s for s, _ in decoded.readings] == list(range(batch.seq[0], batch.seq[1] + 1))


@given(batches(), st.data())
def test_one_bad_item_is_rejected_alone(batch: ReadingBatch, data: st.DataObject) -> None:
    doc = json.loads(encode(batch))
    bad = data.draw(st.integers(0, len(doc["items"]) - 1))
    doc["items"][bad]["value"] = data.draw(st.sampled_from(["warm", None, [], {"x": 1}]))
    decoded = decode_batch(json.dumps(doc).encode(), now_ms=NOW)
    assert [r.index for r in decoded.rejected] == [bad]
    assert decoded.rejected[0].seq == batch.seq[0] + bad
    assert "value" in decoded.rejected[0].reason
    assert len(decoded.readings) == len(batch.items) - 1


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        decode_batch(data, now_ms=NOW)
    except DecodeError as err:
        assert err.reason  # noqa: PT017 - any rejection must carry a reason


def _doc(**over: object) -> bytes:
    item = {
        "t": NOW - 1000,
        "sensor": "fridge-a",
        "qty": "temperature",
        "value": 4.5,
        "unit": "Cel",
    }
    doc: dict[str, object] = {
        "v": 1,
        "gateway": "gw-1",
        "stream": "s1",
        "seq": [1, 1],
        "sent": NOW,
        "items": [item],
    }
    items = over.pop("items", None)
    if isinstance(items, dict):
        item.update(items)
    doc.update(over)
    return json.dumps(doc).replace('"__1e999__"', "1e999").encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (_doc(v=2), "unknown wire version 2"),
        (_doc(seq=[1, 3]), "covers 3 items but the batch has 1"),
        (_doc(seq=[5, 4]), "reversed"),
        (_doc(gateway="bad/id"), "gateway"),
        (b'{"v":1,"gateway":"gw-1","stream":"s1","seq":[1,1],"sent":1}', "items"),
        (b"not json", "not valid JSON"),
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "exceeds the limit"),
    ],
)
def test_whole_message_rejections(payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_batch(payload, now_ms=NOW)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"value": "__1e999__"}, "out of range"),
        ({"value": "NaN"}, "value"),
        ({"t": NOW + 3_600_000}, "3600 s in the future"),
        ({"t": 0}, "before 2000-01-01"),
        ({"unit": "K"}, "unit 'K' is not valid for temperature"),
        ({"qty": "mood", "unit": "1"}, "unknown quantity 'mood'"),
        ({"value": -300.0}, "below absolute zero"),
        ({"t": "yesterday"}, "t"),
        ({"sensor": ""}, "sensor"),
    ],
)
def test_item_rejections(item: dict[str, object], reason: str) -> None:
    decoded = decode_batch(_doc(items=item), now_ms=NOW)
    assert decoded.readings == []
    assert len(decoded.rejected) == 1
    assert reason in decoded.rejected[0].reason


def test_too_many_items() -> None:
    n = MAX_ITEMS + 1
    batch = ReadingBatch(
        v=1,
        gateway="g",
        stream="s",
        seq=(1, n),
        sent=NOW,
        items=[Reading(t=NOW, sensor="s", qty="door", value=0, unit="1")] * n,
    )
    with pytest.raises(DecodeError, match="more than the limit"):
        decode_batch(encode(batch), now_ms=NOW)


def test_unknown_fields_are_ignored() -> None:
    doc = json.loads(_doc())
    doc["firmware"] = "1.2"
    doc["items"][0]["rssi"] = -70
    assert len(decode_batch(json.dumps(doc).encode(), now_ms=NOW).readings) == 1


@given(ids, ids, st.integers(0, 2**40))
def test_ack_and_state_round_trip(gw: str, stream_seed: str, committed: int) -> None:
    stream = stream_seed.replace(".", "_").replace(":", "_")
    ack = Ack(v=1, gateway=gw, stream=stream, committed=committed, t=NOW)
    assert decode_ack(encode(ack)) == ack
    state = GatewayState(
        v=1,
        gateway=gw,
        status=Status.ONLINE,
        t=NOW,
        outbox_depth=committed,
        sources=[SourceState(name="fridge-a", ok=False, error="timeout")],
    )
    assert decode_state(encode(state)) == state


@given(ids, ids, st.sampled_from(list(Kind)))
def test_topic_round_trip(site: str, gateway: str, kind: Kind) -> None:
    topic = Topic.build(site, gateway, kind)
    assert Topic.parse(str(topic)) == topic


@pytest.mark.parametrize(
    "topic", ["ct/v2/s/g/readings", "ct/v1/s/g/mood", "ct/v1/s/+/readings", "ct/v1/s/g", "x"]
)
def test_bad_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(topic)


def test_shared_subscription() -> None:
    assert subscription(Kind.READINGS, share="ingest") == "$share/ingest/ct/v1/+/+/readings"
