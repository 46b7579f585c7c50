"""Pure: readings as PostgreSQL binary COPY data for ``telemetry.readings``, and their spans.

The common path of a flush is one binary COPY straight into ``telemetry.readings``
(ingest/store.py). psycopg's ``write_row`` adapts each value through its type
machinery and needs a ``datetime`` per reading for the ``timestamptz`` column; a row
here is one precompiled ``struct`` pack of five scalars, the time converted with
integer arithmetic. That halves the worker's CPU per reading on this step
(docs/benchmarks.md, issue 13).

Binary COPY layout (PostgreSQL docs, "COPY", binary format): an 11-byte signature, a
32-bit flags word and a 32-bit header-extension length, then per row a 16-bit field
count and, per field, a 32-bit byte length and the value in network byte order;
a 16-bit -1 ends the data. ``timestamptz`` is a 64-bit count of microseconds since
2000-01-01 00:00 UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from telemetry.payloads import Reading

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
TRAILER = struct.pack("!h", -1)
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z in Unix milliseconds
# field count 5; time int8, sensor_id int4, value float8, flags int4, gateway_seq int8
_ROW = struct.Struct("!hiqiiidiiiq")
COLUMNS = "time, sensor_id, value, flags, gateway_seq"

# (sensor id) -> [min t ms, max t ms] of the readings in one COPY
Spans = dict[int, list[int]]


def encode_rows(
    readings: Iterable[tuple[str, int, Reading]],
    sensor_id: Callable[[tuple[str, str, str]], int],
) -> tuple[bytes, Spans]:
    """The whole binary COPY stream for ``readings`` and each sensor's time span.

    ``readings`` are (gateway, seq, reading); ``sensor_id`` maps (gateway, uid,
    quantity) to the sensor's id. The spans feed ``telemetry.eval_pending``.
    """
    pack = _ROW.pack
    parts = [SIGNATURE]
    append = parts.append
    spans: Spans = {}
    for gw, seq, r in readings:
        sid = sensor_id((gw, r.sensor, r.qty))
        t = r.t
        append(pack(5, 8, (t - PG_EPOCH_MS) * 1000, 4, sid, 8, r.value, 4, r.flags, 8, seq))
        span = spans.get(sid)
        if span is None:
            spans[sid] = [t, t]
        elif t < span[0]:
            span[0] = t
        elif t > span[1]:
            span[1] = t
    append(TRAILER)
    return b"".join(parts), spans


def decode_rows(data: bytes) -> list[tuple[int, int, float, int, int]]:
    """(t ms, sensor id, value, flags, seq) of each row of ``encode_rows``'s output.

    The inverse, for tests and for reading a stream back; raises ``ValueError`` on
    anything ``encode_rows`` does not produce.
    """
    if not data.startswith(SIGNATURE) or not data.endswith(TRAILER):
        raise ValueError("not a binary COPY stream of encode_rows")
    body = data[len(SIGNATURE) : len(data) - len(TRAILER)]
    if len(body) % _ROW.size:
        raise ValueError("truncated row")
    rows = []
    for fields in _ROW.iter_unpack(body):
        n, _, t_us, _, sid, _, value, _, flags, _, seq = fields
        if n != 5 or t_us % 1000:
            raise ValueError("not a row of encode_rows")
        rows.append((t_us // 1000 + PG_EPOCH_MS, sid, value, flags, seq))
    return rows
