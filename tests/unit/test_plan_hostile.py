"""Decoding messages into a plan: no message can raise, every one is accounted for."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import plan as plan_module
from ingest.plan import Plan, Received, decode_message
from telemetry.codec import encode
from tests.mqtt_helpers import T0_MS, batch

NOW = T0_MS + 3_600_000
DEEP = b'{"a":' * 30_000 + b"1" + b"}" * 30_000


def msg(topic: str, payload: bytes) -> Received:
    return Received(topic, payload, mid=1, qos=1, generation=1)


def add(p: Plan, topic: str, payload: bytes) -> None:
    p.add(msg(topic, payload), now_ms=NOW, max_future_ms=600_000)


@pytest.mark.parametrize("kind", ["readings", "tags", "scans", "state"])
def test_deeply_nested_message_of_every_kind_is_one_dead_letter(kind: str) -> None:
    p = Plan()
    add(p, f"ct/v1/plant-1/gw-1/{kind}", DEEP)
    assert len(p.dead_letters) == 1
    assert "nested too deeply" in p.dead_letters[0].reason
    assert p.dead_letters[0].gateway == "gw-1"
    assert (p.readings, p.states, p.ranges) == ([], [], {})


def test_hostile_state_messages_are_dead_letters_and_a_good_one_is_kept() -> None:
    p = Plan()
    topic = "ct/v1/plant-1/gw-1/state"
    add(p, topic, b"\xff\xfe junk")
    add(p, topic, b'{"v":1,"gateway":"gw-1","status":"on\xfffire","t":1}')
    add(
        p,
        topic,
        b'{"v":1,"gateway":"gw-1","status":"online","t":1,"sources":[{"name":"a\\u0000","ok":true}]}',
    )
    add(p, topic, b'{"v":1,"gateway":"gw-1","status":"online","t":1}')
    reasons = [d.reason for d in p.dead_letters]
    assert len(reasons) == 3
    assert all(r.startswith("invalid state message: ") for r in reasons)
    assert "UTF-8" in reasons[1]
    assert "NUL" in reasons[2]
    assert [(str(t), s.status.value) for t, s, _ in p.states] == [(topic, "online")]


def test_a_bug_while_decoding_dead_letters_the_message_and_the_plan_goes_on(monkeypatch) -> None:
    def broken(*_args: object, **_kw: object) -> object:
        raise KeyError("a bug of ours")

    p = Plan()
    good = encode(batch(1, 3))
    monkeypatch.setattr(plan_module, "decode_batch", broken)
    add(p, "ct/v1/plant-1/gw-1/readings", good)
    monkeypatch.undo()
    add(p, "ct/v1/plant-1/gw-1/readings", good)
    assert len(p.dead_letters) == 1
    assert "ingest failed to decode it (KeyError" in p.dead_letters[0].reason
    assert p.dead_letters[0].payload == good
    assert len(p.readings) == 3
    assert p.messages == 2


def test_wrong_gateway_is_rejected_whole_for_readings_and_events() -> None:
    p = Plan()
    add(p, "ct/v1/plant-1/gw-2/readings", encode(batch(1, 2, gateway="gw-1")))
    events = {
        "v": 1,
        "gateway": "gw-1",
        "stream": "t1",
        "seq": [1, 1],
        "sent": T0_MS,
        "items": [{"t": T0_MS, "reader": "r1", "antenna": 1, "epc": "3034"}],
    }
    add(p, "ct/v1/plant-1/gw-2/tags", json.dumps(events).encode())
    assert [d.reason for d in p.dead_letters] == [
        "payload gateway 'gw-1' does not match topic gateway 'gw-2'"
    ] * 2
    assert (p.readings, p.events.tags, p.ranges) == ([], [], {})


topics = st.one_of(
    st.text(max_size=80),
    st.builds(
        "ct/v1/{}/{}/{}".format,
        st.sampled_from(["plant-1", "", "+", "x" * 70]),
        st.sampled_from(["gw-1", "gw 2", "$sys"]),
        st.sampled_from(["readings", "tags", "scans", "state", "ack", "other"]),
    ),
)
payloads = st.one_of(
    st.binary(max_size=500),
    st.just(DEEP),
    st.just(encode(batch(1, 2))),
    st.builds(lambda b: encode(batch(1, 2))[:b], st.integers(0, 200)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(topics, payloads), max_size=8))
def test_any_messages_never_raise_and_each_is_accounted_for(messages: list) -> None:
    p = Plan()
    for topic, payload in messages:
        part = decode_message(msg(topic, payload), now_ms=NOW, max_future_ms=600_000)
        stored = part.readings or part.events.tags or part.events.scans or part.state
        assert stored or part.dead_letters or part.seq_range, "a message vanished"
        assert all(d.reason for d in part.dead_letters)
        add(p, topic, payload)
    assert p.messages == len(messages)
