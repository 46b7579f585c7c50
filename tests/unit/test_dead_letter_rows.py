"""A dead letter's stored form: a payload prefix, its size and hash, a stable key."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from ingest.dead_letters import MAX_REASON_CHARS, MAX_TOPIC_CHARS, DeadLetter, row

TOPIC = "ct/v1/plant-1/gw-1/readings"


@given(st.binary(max_size=5000), st.integers(0, 6000))
def test_prefix_size_and_hash(payload: bytes, prefix: int) -> None:
    (_, _, _, _, _, _, stored, size, sha, _) = row(
        DeadLetter(TOPIC, "bad", payload), payload_bytes=prefix
    )
    assert stored == payload[:prefix]
    assert len(stored) == min(prefix, len(payload))
    assert size == len(payload)
    assert sha == hashlib.sha256(payload).digest()


def test_an_item_is_keyed_by_its_stream_position_not_its_index_or_bytes() -> None:
    a = DeadLetter(TOPIC, "bad value", b'{"value":"warm"}', "gw-1", "s1", 12, 1)
    resent = DeadLetter(TOPIC, "bad value", b'{"value": "warm"}', "gw-1", "s1", 12, 0)
    other = DeadLetter(TOPIC, "bad value", b'{"value":"warm"}', "gw-1", "s1", 13, 1)
    assert a.dedupe_key == resent.dedupe_key == f"item {TOPIC} s1 12"
    assert other.dedupe_key != a.dedupe_key


def test_a_whole_message_is_keyed_by_topic_and_payload() -> None:
    a = DeadLetter(TOPIC, "not valid JSON", b"junk", "gw-1")
    same = DeadLetter(TOPIC, "another reason", b"junk")
    expected = hashlib.sha256(TOPIC.encode() + b"\x00" + b"junk").hexdigest()
    assert a.dedupe_key == same.dedupe_key == f"message {expected}"
    assert DeadLetter(TOPIC, "x", b"junk2").dedupe_key != a.dedupe_key
    assert DeadLetter(TOPIC.replace("gw-1", "gw-2"), "x", b"junk").dedupe_key != a.dedupe_key


def test_text_is_made_storable_and_short() -> None:
    letter = DeadLetter("t/\x00/" + "x" * 70_000, "why \x00" + "y" * 5000, b"")
    topic, *_, reason = row(letter, payload_bytes=10)[:6]
    assert "\x00" not in topic
    assert "\x00" not in reason
    assert len(topic) == MAX_TOPIC_CHARS
    assert len(reason) == MAX_REASON_CHARS
    assert reason.startswith("why \\x00")
