"""Fuzzing the gateway's side of ack decoding (gateway/publisher.py ``Publisher.apply_ack``).

The wire codec (``telemetry.codec.decode_ack``) is fuzzed with the codec; this is what
the gateway does with whatever arrives on ``…/ack/#``.

Contract: ``apply_ack(payload, retained=)`` never raises, whatever the bytes (a crash
there stopped the publisher: a retained hostile ack would stop it at every
reconnect). It deletes from the outbox only items whose seq a well-formed ack of
this gateway's own stream claims as committed, never past the last seq the gateway
assigned; anything else (not JSON, nested too deeply, another gateway, another
stream, a field out of range) deletes nothing.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.config import GatewayConfig
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from telemetry.payloads import Ack, Reading
from telemetry.topics import Kind
from tests.fuzz_support import dumps, fuzz_settings, invalid_utf8, json_values, nested

GATEWAY = "gw-plant1-01"
T0 = 1_764_000_061_350
OURS = "OURS"  # stands for this outbox's readings stream id in generated acks


def _ack(
    gateway: str, stream: str, committed: object, t: object = T0, v: object = 1
) -> dict[str, object]:
    return {"v": v, "gateway": gateway, "stream": stream, "committed": committed, "t": t}


PAYLOADS = st.one_of(
    # well-formed acks of our readings stream: the only ones that may delete
    st.integers(0, 40).map(lambda c: ("valid", c)),
    # acks of other gateways or streams, with fields out of range, other versions
    st.builds(
        lambda g, s, c, t, v: ("other", _ack(g, s, c, t, v)),
        st.sampled_from([GATEWAY, "gw-2", "", "gw plant", GATEWAY.upper()]),
        st.sampled_from([OURS, "an-old-stream", "", "x" * 65, "a/b"]),
        st.one_of(st.integers(-5, 50), st.integers(2**62, 2**70), st.floats(), st.text(max_size=3)),
        st.one_of(st.integers(-1, 2**54), st.floats(), st.none()),
        st.sampled_from([1, 2, 0, "1", None]),
    ),
    json_values().map(lambda v: ("junk", v)),
    st.binary(max_size=80).map(lambda b: ("bytes", b)),
    invalid_utf8().map(lambda b: ("bytes", b)),
    st.integers(1, 200_000).map(lambda d: ("bytes", nested(d))),
)


def _config(tmp: Path) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway": {"id": GATEWAY, "site": "plant-1"},
            "mqtt": {"host": "127.0.0.1"},
            "outbox": {"path": str(tmp / "o.sqlite")},
        }
    )


def _payload(kind: str, value: object, stream: str) -> bytes:
    if kind == "valid":
        return dumps(_ack(GATEWAY, stream, value))
    if kind == "other":
        assert isinstance(value, dict)
        if value["stream"] == OURS:
            value = {**value, "stream": stream}
        return dumps(value)
    if kind == "junk":
        return dumps(value)
    assert isinstance(value, bytes)
    return value


def _held(box: Outbox) -> dict[int, int]:
    """The readings the outbox still holds: seq -> device time (unique per reading here)."""
    return {seq: r.t for seq, r in box.read_from(1, 10_000)}


def _claim(payload: bytes, stream: str) -> int | None:
    """The watermark ``payload`` claims for our readings stream if it is a well-formed ack."""
    try:
        ack = msgspec.json.decode(payload, type=Ack)
    except (msgspec.DecodeError, RecursionError):
        return None
    if (ack.v, ack.gateway, ack.stream) != (1, GATEWAY, stream):
        return None
    return ack.committed


@fuzz_settings(scale=0.5)
@given(items=st.integers(1, 30), acks=st.lists(PAYLOADS, max_size=8), retained=st.booleans())
@example(items=5, acks=[("bytes", nested(100_000))], retained=True)  # was RecursionError
@example(items=5, acks=[("bytes", b'{"v":1,"x":' + nested(50_000) + b"}")], retained=False)
@example(items=2, acks=[("valid", 1), ("valid", 3)], retained=False)  # beyond: a new stream
def test_no_payload_stops_the_publisher_or_deletes_what_was_not_acked(
    tmp_path_factory: object, items: int, acks: list[tuple[str, object]], retained: bool
) -> None:
    tmp = tmp_path_factory.mktemp("ack")  # type: ignore[attr-defined]
    with Outbox.open(tmp / "o.sqlite") as box:
        box.append(
            [
                Reading(t=T0 + i, sensor="fridge-a", qty="temperature", value=4.0, unit="Cel")
                for i in range(items)
            ]
        )
        box.append_events(Kind.TAGS, [b'{"t":1,"reader":"r","antenna":0,"epc":"AA"}'] * 3)
        publisher = Publisher(_config(tmp), box)
        for kind, value in acks:
            stream, last, before = box.stream, box.last_seq(), _held(box)
            payload = _payload(kind, value, stream)
            assert publisher.apply_ack(payload, retained=retained) >= 0
            publisher.flush()
            after = _held(box)
            gone = set(before.values()) - set(after.values())
            claim = _claim(payload, stream)
            assert set(after.values()) <= set(before.values())
            if claim is not None and claim > last:
                # beyond what this outbox assigned (forged, or a restored outbox): nothing
                # is deleted, and what is held goes out again as a new stream from seq 1
                assert not gone
                assert box.stream != stream
                assert sorted(after) == list(range(1, len(after) + 1))
            elif gone:
                # only what a well-formed ack of this stream claimed, oldest first
                assert claim is not None
                assert gone == {t for seq, t in before.items() if seq <= claim}
        assert 0 <= publisher.committed <= items
        assert box.event_depth(Kind.TAGS) == 3  # no readings ack touches another stream


def test_the_documented_ack_confirms_its_stream(tmp_path: Path) -> None:
    # docs/wire-contract.md: {"v": 1, "gateway": "gw-plant1-01", "stream": …,
    # "committed": 1203, "t": 1764000061350}; here with this outbox's stream id
    with Outbox.open(tmp_path / "o.sqlite") as box:
        box.append(
            [
                Reading(t=T0 + i, sensor="fridge-a", qty="temperature", value=4.0, unit="Cel")
                for i in range(1300)
            ]
        )
        publisher = Publisher(_config(tmp_path), box)
        payload = msgspec.json.encode(_ack(GATEWAY, box.stream, 1203, 1764000061350))
        publisher.apply_ack(payload)
        publisher.flush()
        assert (publisher.committed, box.first_seq(), box.depth()) == (1203, 1204, 97)
