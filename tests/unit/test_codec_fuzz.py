"""Fuzzing the wire decoders: whatever the bytes, a result or `DecodeError`, never a crash.

Each decoder of the wire contract is the boundary between untrusted bytes and ingest.
These properties hold for arbitrary bytes, arbitrary JSON in every field, nesting far
past the recursion limit, payloads past the size limit, invalid UTF-8 and NUL bytes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.codec import (
    MAX_PAYLOAD_BYTES,
    MAX_REASON_CHARS,
    DecodeError,
    decode_ack,
    decode_batch,
    decode_scans,
    decode_state,
    decode_tags,
)

NOW = 1_764_000_000_000
T = NOW - 60_000

Decoder = Callable[[bytes], object]
DECODERS: dict[str, Decoder] = {
    "batch": lambda b: decode_batch(b, now_ms=NOW),
    "tags": lambda b: decode_tags(b, now_ms=NOW),
    "scans": lambda b: decode_scans(b, now_ms=NOW),
    "state": decode_state,
    "ack": decode_ack,
}
ITEMS = {
    "batch": {"t": T, "sensor": "fridge-a", "qty": "temperature", "value": 4.5, "unit": "Cel"},
    "tags": {"t": T, "reader": "r1", "antenna": 1, "epc": "3034F4"},
    "scans": {"t": T, "scanner": "dock-1", "data": "]C1010123", "ok": True},
}


def envelope(kind: str, items: list[object] | None = None) -> dict[str, object]:
    """A valid document of ``kind`` (items replaced if given)."""
    if kind == "state":
        return {
            "v": 1,
            "gateway": "gw-1",
            "status": "online",
            "t": T,
            "sources": [{"name": "modbus", "ok": True}],
        }
    if kind == "ack":
        return {"v": 1, "gateway": "gw-1", "stream": "s1", "committed": 3, "t": T}
    its = [ITEMS[kind]] if items is None else items
    return {
        "v": 1,
        "gateway": "gw-1",
        "stream": "s1",
        "seq": [1, len(its)],
        "sent": T,
        "items": its,
    }


def outcome(kind: str, data: bytes) -> object | DecodeError:
    """The decoder's result, or the `DecodeError` it raised; anything else fails the test."""
    try:
        result = DECODERS[kind](data)
    except DecodeError as err:
        rejection = err
    else:
        if kind == "state":  # stored whole as jsonb: must be UTF-8 JSON without NUL
            # the decoder's depth limit is Python's recursion limit counted from where it
            # runs; this check runs deeper in the stack, so it gets room of its own
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(limit, 50_000))
            try:
                assert "\x00" not in json.dumps(json.loads(data.decode("utf-8")))
            finally:
                sys.setrecursionlimit(limit)
        return result
    assert rejection.reason, "a rejection always says why"
    assert len(rejection.reason) <= MAX_REASON_CHARS
    return rejection


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
kinds = st.sampled_from(sorted(DECODERS))
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@fuzz
@given(kinds, st.binary(max_size=2000))
def test_arbitrary_bytes(kind: str, data: bytes) -> None:
    outcome(kind, data)


@fuzz
@given(kinds, json_values)
def test_arbitrary_json_documents(kind: str, value: object) -> None:
    outcome(kind, json.dumps(value).encode())


@fuzz
@given(kinds, st.data())
def test_any_json_in_any_field(kind: str, data: st.DataObject) -> None:
    doc = envelope(kind)
    field = data.draw(st.sampled_from([*doc, "unknown"]))
    doc[field] = data.draw(json_values)
    outcome(kind, json.dumps(doc).encode())


@fuzz
@given(st.sampled_from(["batch", "tags", "scans"]), st.data())
def test_any_json_in_item_fields_is_judged_item_by_item(kind: str, data: st.DataObject) -> None:
    items: list[object] = []
    for _ in range(data.draw(st.integers(1, 5))):
        item = dict(ITEMS[kind])
        item[data.draw(st.sampled_from([*item, "extra"]))] = data.draw(json_values)
        items.append(data.draw(st.sampled_from([item, ITEMS[kind]])) if items else item)
    result = outcome(kind, json.dumps(envelope(kind, items)).encode())
    assert not isinstance(result, DecodeError), "a sound envelope is split, not rejected whole"
    accepted = getattr(result, "readings", None) or getattr(result, "items", [])
    assert len(accepted) + len(result.rejected) == len(items)  # type: ignore[attr-defined]


# --- deep nesting -----------------------------------------------------------------------


def nested(depth: int, kind: str) -> bytes:
    return (
        (b"[" * depth + b"]" * depth)
        if kind == "list"
        else (b'{"a":' * depth + b"1" + b"}" * depth)
    )


@pytest.mark.parametrize("kind", sorted(DECODERS))
@pytest.mark.parametrize("where", ["top", "unknown field", "known field", "item"])
@pytest.mark.parametrize("depth", [2_000, 20_000, 500_000])
@pytest.mark.parametrize("shape", ["list", "object"])
def test_deep_nesting_is_rejected_with_reason(
    kind: str, where: str, depth: int, shape: str
) -> None:
    deep = nested(depth, shape)
    if len(deep) > MAX_PAYLOAD_BYTES:
        deep = nested(MAX_PAYLOAD_BYTES // 10, shape)
    if where == "top":
        data = deep
    else:
        doc = envelope(kind)
        key = {"unknown field": "x", "known field": "gateway"}.get(where)
        if key is None:  # in an item, or in a state source
            key = "sources" if kind == "state" else "items" if "items" in doc else "gateway"
            doc[key] = ["__DEEP__"]
        else:
            doc[key] = "__DEEP__"
        data = json.dumps(doc).encode().replace(b'"__DEEP__"', deep)
    result = outcome(kind, data)
    assert isinstance(result, DecodeError)
    if where != "top" or shape == "object":
        assert "nested too deeply" in result.reason


@fuzz
@given(kinds, st.integers(1, 3_000), st.sampled_from(["list", "object"]))
def test_any_nesting_depth(kind: str, depth: int, shape: str) -> None:
    doc = envelope(kind)
    doc["extra"] = "__DEEP__"
    outcome(kind, json.dumps(doc).encode().replace(b'"__DEEP__"', nested(depth, shape)))


# --- huge inputs ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_over_the_size_limit_is_rejected_before_parsing(kind: str) -> None:
    data = nested(MAX_PAYLOAD_BYTES, "list")  # 2 MiB of nesting: never parsed
    result = outcome(kind, data)
    assert isinstance(result, DecodeError)
    assert "exceeds the limit of 1048576" in result.reason


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_huge_values_just_under_the_limit(kind: str) -> None:
    for huge in ("x" * (MAX_PAYLOAD_BYTES - 400), 10**4000, [0] * 300_000):
        doc = envelope(kind)
        doc["gateway"] = huge
        outcome(kind, json.dumps(doc).encode()[:MAX_PAYLOAD_BYTES])
        doc = envelope(kind)
        doc["extra"] = huge
        outcome(kind, json.dumps(doc).encode()[:MAX_PAYLOAD_BYTES])


def test_a_long_hostile_value_gives_a_short_reason() -> None:
    doc = envelope("state")
    doc["status"] = "x" * 500_000
    result = outcome("state", json.dumps(doc).encode())
    assert isinstance(result, DecodeError)
    assert result.reason.startswith("invalid field: Invalid enum value")
    assert result.reason.endswith("…")


# --- encoding: invalid UTF-8 and NUL ----------------------------------------------------

invalid_utf8 = st.sampled_from(
    [b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]
)


@fuzz
@given(kinds, invalid_utf8, st.data())
def test_invalid_utf8_anywhere(kind: str, bad: bytes, data: st.DataObject) -> None:
    text = json.dumps(envelope(kind)).encode()
    at = data.draw(st.integers(0, len(text)))
    outcome(kind, text[:at] + bad + text[at:])


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_invalid_utf8_in_a_string_says_so(kind: str) -> None:
    data = json.dumps(envelope(kind)).encode().replace(b'"gw-1"', b'"gw-\xff"')
    result = outcome(kind, data)
    assert isinstance(result, DecodeError)
    assert "UTF-8" in result.reason


@fuzz
@given(kinds, st.data())
def test_nul_bytes_anywhere(kind: str, data: st.DataObject) -> None:
    text = json.dumps(envelope(kind)).encode()
    at = data.draw(st.integers(0, len(text)))
    outcome(kind, text[:at] + b"\x00" + text[at:])
    outcome(kind, text[:at] + b"\\u0000" + text[at:])


def test_escaped_nul_in_stored_text_is_rejected_item_by_item() -> None:
    tag = {**ITEMS["tags"], "gtin": "0950\u00001"}
    decoded = decode_tags(json.dumps(envelope("tags", [ITEMS["tags"], tag])).encode(), now_ms=NOW)
    assert len(decoded.items) == 1
    assert [r.index for r in decoded.rejected] == [1]
    assert "NUL" in decoded.rejected[0].reason

    reading = {**ITEMS["batch"], "sensor": "fr\u0000idge"}
    batch = decode_batch(json.dumps(envelope("batch", [reading])).encode(), now_ms=NOW)
    assert batch.readings == []
    assert "printable ASCII" in batch.rejected[0].reason

    state = envelope("state")
    state["sources"] = [{"name": "mod\u0000bus", "ok": True}]
    with pytest.raises(DecodeError, match="NUL"):
        decode_state(json.dumps(state).encode())


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (b'"\xff\xfe"', "UTF-8"),
        (b"1e999999", "out of range"),
        (b'{"alarm": "\\u0000"}', "NUL"),
        (b'["\\\\\\u0000"]', "NUL"),  # an escaped backslash, then an escaped NUL
    ],
)
def test_a_state_is_checked_whole_since_it_is_stored_whole(extra: bytes, reason: str) -> None:
    """msgspec skips unknown fields unchecked; the stored JSON must still be valid."""
    data = json.dumps(envelope("state")).encode()[:-1] + b', "alarms": ' + extra + b"}"
    with pytest.raises(DecodeError, match=reason):
        decode_state(data)


def test_a_state_may_quote_a_backslash_before_u0000() -> None:
    data = json.dumps({**envelope("state"), "note": "C:\\u0000"}).encode()
    assert b"\\\\u0000" in data
    assert decode_state(data).gateway == "gw-1"


@pytest.mark.parametrize("date", ["2027-02-30", "2027-13-01", "\u0662\u0660\u0662\u0667-01-01"])
def test_a_scan_with_an_impossible_date_is_rejected_on_its_own(date: str) -> None:
    bad = {**ITEMS["scans"], "expiry": date}
    decoded = decode_scans(
        json.dumps(envelope("scans", [ITEMS["scans"], bad])).encode(), now_ms=NOW
    )
    assert len(decoded.items) == 1
    assert [r.index for r in decoded.rejected] == [1]
    assert "not a calendar date" in decoded.rejected[0].reason
