"""The binary COPY rows ingest writes straight into telemetry.readings (ingest/copy_rows.py)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.copy_rows import PG_EPOCH_MS, SIGNATURE, TRAILER, decode_rows, encode_rows
from telemetry.payloads import Reading

GATEWAYS = ["gw-a", "gw-b"]
SENSORS = ["t1", "t2", "t3"]
QTYS = ["temperature", "humidity"]

readings = st.lists(
    st.tuples(
        st.sampled_from(GATEWAYS),
        st.integers(min_value=0, max_value=2**63 - 1),
        st.builds(
            Reading,
            t=st.integers(min_value=946_684_800_000, max_value=32_503_680_000_000),
            sensor=st.sampled_from(SENSORS),
            qty=st.sampled_from(QTYS),
            value=st.floats(allow_nan=False, allow_infinity=False),
            unit=st.just("Cel"),
            flags=st.integers(min_value=0, max_value=65535),
        ),
    ),
    max_size=60,
)


def sensor_ids() -> dict[tuple[str, str, str], int]:
    keys = [(g, s, q) for g in GATEWAYS for s in SENSORS for q in QTYS]
    return {k: 1000 + i * 7 for i, k in enumerate(keys)}


@given(readings)
def test_every_reading_is_one_row_with_its_values(items: list[tuple[str, int, Reading]]) -> None:
    ids = sensor_ids()
    data, spans = encode_rows(items, ids.__getitem__)
    expected = [(r.t, ids[(g, r.sensor, r.qty)], r.value, r.flags, seq) for g, seq, r in items]
    assert decode_rows(data) == expected
    by_sensor: dict[int, list[int]] = {}
    for g, _seq, r in items:
        by_sensor.setdefault(ids[(g, r.sensor, r.qty)], []).append(r.t)
    assert spans == {sid: [min(ts), max(ts)] for sid, ts in by_sensor.items()}


def test_layout_is_postgresql_binary_copy() -> None:
    """Signature, header, one row of five fields, trailer: as the PostgreSQL manual says."""
    r = Reading(t=PG_EPOCH_MS + 1500, sensor="t1", qty="temperature", value=4.5, unit="Cel")
    data, _ = encode_rows([("gw-a", 9, r)], lambda _k: 42)
    assert data[:11] == b"PGCOPY\n\xff\r\n\x00"
    assert data[11:19] == b"\x00" * 8  # flags, header extension length
    row = data[19:-2]
    assert struct.unpack("!h", row[:2]) == (5,)
    # time: 1.5 s after 2000-01-01 is 1,500,000 microseconds
    assert struct.unpack("!iq", row[2:14]) == (8, 1_500_000)
    assert struct.unpack("!ii", row[14:22]) == (4, 42)
    assert struct.unpack("!id", row[22:34]) == (8, 4.5)
    assert struct.unpack("!ii", row[34:42]) == (4, 0)
    assert struct.unpack("!iq", row[42:54]) == (8, 9)
    assert data[-2:] == b"\xff\xff"


def test_an_empty_batch_is_a_valid_empty_stream() -> None:
    data, spans = encode_rows([], lambda _k: 1)
    assert data == SIGNATURE + TRAILER
    assert spans == {}
    assert decode_rows(data) == []


@pytest.mark.parametrize("data", [b"", b"PGCOPY", SIGNATURE + b"\x00\x05" + TRAILER])
def test_decode_refuses_what_encode_does_not_produce(data: bytes) -> None:
    with pytest.raises(ValueError, match=r"row|stream"):
        decode_rows(data)
