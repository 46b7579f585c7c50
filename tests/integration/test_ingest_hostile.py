"""Hostile payloads through a real Mosquitto: each is dead-lettered once, good data flows on.

The stream mixes good reading batches with what used to crash-loop ingest (deeply nested
JSON on readings, tags and scans; a retained nested ``state`` message that every fresh
worker receives on subscribing) and other hostile input: junk and NUL bytes, invalid
UTF-8, a payload over the size limit, a payload naming another gateway, text with an
escaped NUL. Expected reasons are written from the wire contract, not from the code.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from coldtrace.broker import Broker
from telemetry.codec import encode
from tests.integration.ingest_helpers import rows, running_worker, scalar
from tests.mqtt_helpers import T0_MS, batch, gateway_client, publish, wait_until

pytestmark = pytest.mark.timeout(180)

BASE = "ct/v1/plant-1/gw-1"
READINGS = f"{BASE}/readings"


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def events_doc(kind: str, items: list[dict[str, object]], *, stream: str, first: int = 1) -> bytes:
    doc = {
        "v": 1,
        "gateway": "gw-1",
        "stream": stream,
        "seq": [first, first + len(items) - 1],
        "sent": T0_MS,
        "items": items,
    }
    return json.dumps(doc).encode()


TAG = {"t": T0_MS, "reader": "dock-door", "antenna": 1, "epc": "3034F4"}
SCAN = {"t": T0_MS, "scanner": "dock-1", "data": "]C1010123", "ok": True}


def hostile_messages() -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected reason fragment) of each hostile message."""
    good_envelope = encode(batch(900, 1))
    deep_item = good_envelope.replace(b'"value":4.0', b'"value":' + nested_list(20_000))
    assert deep_item != good_envelope
    deep_tags = events_doc("tags", [TAG], stream="t1").replace(
        b'"antenna": 1', b'"antenna": ' + nested_list(15_000)
    )
    deep_scans = events_doc("scans", [SCAN], stream="c1").replace(
        b'"ok": true', b'"ok": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    )
    oversize = b'{"v":1,"pad":"' + b"x" * (1_500_000) + b'"}'
    return [
        (READINGS, deep_item, "JSON nested too deeply"),
        (f"{BASE}/tags", deep_tags, "JSON nested too deeply"),
        (f"{BASE}/scans", deep_scans, "JSON nested too deeply"),
        (READINGS, b"\x00\x01\x02 junk \xff\xfe", "not valid JSON"),
        (READINGS, b"\x00" * 64, "not valid JSON"),
        (READINGS, oversize, "exceeds the limit of 1048576"),
        (READINGS, encode(batch(950, 2, gateway="gw-9")), "does not match topic gateway 'gw-1'"),
        (READINGS, encode(batch(960, 1)).replace(b'"gw-1"', b'"gw-\xff1"'), "UTF-8"),
        (
            f"{BASE}/state",
            (
                b'{"v":1,"gateway":"gw-1","status":"online","t":1,'
                b'"sources":[{"name":"modbus\\u0000","ok":true}]}'
            ),
            "invalid state message: a string has a NUL character",
        ),
        (  # unknown fields are stored too (jsonb): invalid UTF-8 there would fail the write
            f"{BASE}/state",
            b'{"v":1,"gateway":"gw-1","status":"online","t":1,"alarms":["\xff"]}',
            "invalid state message: not valid UTF-8",
        ),
    ]


RETAINED_STATE = (
    b'{"v":1,"gateway":"gw-1","status":"online","t":1,"sources":' + nested_list(25_000) + b"}"
)


def test_hostile_stream_is_dead_lettered_once_and_good_readings_are_stored(
    broker: Broker, db_url: str
) -> None:
    pub = gateway_client(broker, "plant-1", "gw-1")
    # retained before any worker runs: every fresh worker receives it on subscribing
    pub.publish(f"{BASE}/state", RETAINED_STATE, qos=1, retain=True).wait_for_publish(10)
    hostile = hostile_messages()
    with running_worker(broker, db_url) as (worker, thread):
        good_first = 1
        for topic, payload, _ in hostile:
            publish(pub, READINGS, batch(good_first, 10))
            good_first += 10
            publish(pub, topic, payload)
        # one good tag and a tag item with an escaped NUL in its GTIN, in one message
        publish(
            pub,
            f"{BASE}/tags",
            events_doc("tags", [TAG, {**TAG, "epc": "3034F5", "gtin": "0950\u00001"}], stream="t2"),
        )
        publish(pub, READINGS, batch(good_first, 10))
        good = good_first + 9
        publish(pub, f"{BASE}/state", b'{"v":1,"gateway":"gw-1","status":"online","t":1}')

        expected = len(hostile) + 2  # + the retained state + the NUL tag item
        assert wait_until(
            lambda: (
                scalar(db_url, "SELECT count(*) FROM telemetry.readings") == good
                and scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters") == expected
            ),
            timeout=60,
        ), (
            scalar(db_url, "SELECT count(*) FROM telemetry.readings"),
            rows(db_url, "SELECT topic, reason FROM telemetry.dead_letters"),
        )
        assert thread.is_alive()
        assert worker.totals.messages >= len(hostile) + 12

    letters = rows(
        db_url,
        "SELECT topic, reason, payload_size, payload_sha256, seq FROM telemetry.dead_letters",
    )
    for topic, payload, reason in hostile:
        matching = [
            letter
            for letter in letters
            if letter[0] == topic and bytes(letter[3]) == hashlib.sha256(payload).digest()
        ]
        assert len(matching) == 1, (topic, reason, [(t, r) for t, r, *_ in letters])
        assert reason in matching[0][1]
        assert matching[0][2] == len(payload)
    (state_reason,) = [r for t, r, *_ in letters if t.endswith("/state") and "nested" in r]
    assert state_reason.startswith("invalid state message: JSON nested too deeply")
    (tag_letter,) = [letter for letter in letters if letter[4] is not None]
    assert "NUL" in tag_letter[1]
    assert tag_letter[4] == 2  # the item's own seq
    # the good tag beside the NUL one is stored; nothing of the nested tags message is
    assert rows(db_url, "SELECT stream, seq, epc FROM telemetry.tag_reads") == [("t2", 1, "3034F4")]
    assert scalar(db_url, "SELECT status FROM telemetry.gateways WHERE id = 'gw-1'") == "online"
    # every good reading stored exactly once, with the watermark past every good batch
    assert scalar(db_url, "SELECT count(DISTINCT gateway_seq) FROM telemetry.readings") == good

    # a fresh worker gets the retained hostile state again: no crash, no second row
    with running_worker(broker, db_url) as (_worker, thread):
        publish(pub, READINGS, batch(good + 1, 10))
        assert wait_until(
            lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == good + 10
        )
        assert wait_until(
            lambda: (
                scalar(
                    db_url,
                    "SELECT times_received FROM telemetry.dead_letters "
                    "WHERE topic LIKE '%%/state' AND reason LIKE '%%nested%%'",
                )
                == 2
            )
        )
        assert thread.is_alive()
    assert scalar(db_url, "SELECT count(*) FROM telemetry.dead_letters") == expected
