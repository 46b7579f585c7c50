"""PostgreSQL adapter: write one plan in one transaction (COPY → staging → insert-select).

Readings are unique on (sensor, time); re-delivered readings are absorbed by
``ON CONFLICT DO NOTHING``. The committed watermark of each gateway stream is advanced
in the same transaction, so "acked" always means "stored".
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

from ingest import dead_letters
from ingest.errors import StoreError
from ingest.events import store_events
from ingest.plan import Plan, StreamKey
from telemetry.payloads import Reading

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS readings_stage (
    sensor_id integer, t_ms bigint, value double precision, flags integer, seq bigint
) ON COMMIT DELETE ROWS
"""
_SELECT = """
INSERT INTO telemetry.readings (time, sensor_id, value, flags, gateway_seq)
SELECT timestamptz 'epoch' + t_ms * interval '1 millisecond', sensor_id, value, flags, seq
  FROM readings_stage
 ORDER BY sensor_id, t_ms
"""
# Re-deliveries are rare, and ON CONFLICT costs about twice a plain insert on every row
# (measured: docs/benchmarks.md). So try the plain insert in a savepoint first and take
# the conflict-absorbing statement only when a duplicate is actually there.
_INSERT_FAST = _SELECT
_INSERT_DEDUPE = _SELECT + "ON CONFLICT DO NOTHING"
_COPY = "COPY readings_stage (sensor_id, t_ms, value, flags, seq) FROM STDIN (FORMAT BINARY)"
# the ranges this batch touched, queued for excursion evaluation in the same transaction
_PENDING = """
INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t)
SELECT sensor_id, timestamptz 'epoch' + min(t_ms) * interval '1 millisecond',
       timestamptz 'epoch' + max(t_ms) * interval '1 millisecond'
  FROM readings_stage GROUP BY sensor_id
"""
RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a committed plan did."""

    stored: int
    duplicates: int
    dead_letters: int
    watermarks: dict[StreamKey, int]
    dead_letters_repeated: int = 0  # re-sent copies of dead letters already stored


class SensorCache:
    """Maps (gateway, uid, quantity) to sensor ids, creating sensors on first sight.

    A device id is unique per gateway only: a reading's sensor is the one of the gateway
    that sent it (its topic, which the broker's ACL ties to that gateway's account), so a
    gateway cannot write into another gateway's ``fridge-1`` (issue 9).
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str, str], int] = {}

    def resolve(self, conn: psycopg.Connection, readings: list[tuple[str, int, Reading]]) -> None:
        """Make sure every sensor of ``readings`` has an id (commits new sensors at once)."""
        missing: dict[tuple[str, str, str], str] = {}
        for gateway, _seq, r in readings:
            key = (gateway, r.sensor, r.qty)
            if key not in self._ids and key not in missing:
                missing[key] = r.unit
        if not missing:
            return
        gws = [k[0] for k in missing]
        uids = [k[1] for k in missing]
        qtys = [k[2] for k in missing]
        units = list(missing.values())
        with conn.transaction():
            conn.execute(
                "INSERT INTO telemetry.sensors (gateway_id, uid, quantity, unit) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
                "ON CONFLICT (gateway_id, uid, quantity) DO NOTHING",
                (gws, uids, qtys, units),
            )
            rows = conn.execute(
                "SELECT s.id, s.gateway_id, s.uid, s.quantity FROM telemetry.sensors s "
                "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(gateway_id, uid, quantity) "
                "USING (gateway_id, uid, quantity)",
                (gws, uids, qtys),
            ).fetchall()
        for sensor_id, gateway, uid, qty in rows:
            self._ids[(gateway, uid, qty)] = sensor_id

    def __getitem__(self, key: tuple[str, str, str]) -> int:
        return self._ids[key]


class Store:
    """Writes plans through one connection owned by the caller."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        dead_letter_payload_bytes: int = 8192,
    ) -> None:
        self.conn = conn
        self.dead_letter_payload_bytes = dead_letter_payload_bytes
        self.sensors = SensorCache()
        conn.execute(_STAGE)
        conn.commit()

    def write(self, plan: Plan) -> WriteResult:
        """Store ``plan`` in one transaction and return the new watermarks."""
        try:
            self.sensors.resolve(self.conn, plan.readings)
            with self.conn.transaction():
                stored = self._copy_readings(plan.readings)
                store_events(self.conn, plan.events)
                if plan.readings:
                    self.conn.execute(_PENDING)
                new_letters = dead_letters.write(
                    self.conn, plan.dead_letters, payload_bytes=self.dead_letter_payload_bytes
                )
                self._gateways(plan)
                watermarks = self._watermarks(plan)
        except psycopg.Error as err:
            raise StoreError(f"writing {plan.messages} messages failed: {err}") from err
        return WriteResult(
            stored=stored,
            duplicates=len(plan.readings) - stored,
            dead_letters=len(plan.dead_letters),
            watermarks=watermarks,
            dead_letters_repeated=len(plan.dead_letters) - new_letters,
        )

    def _copy_readings(self, readings: list[tuple[str, int, Reading]]) -> int:
        if not readings:
            return 0
        ids = self.sensors
        with self.conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                copy.set_types(["int4", "int8", "float8", "int4", "int8"])
                write = copy.write_row
                for gw, seq, r in readings:
                    write((ids[(gw, r.sensor, r.qty)], r.t, r.value, r.flags, seq))
            try:
                with self.conn.transaction():
                    cur.execute(_INSERT_FAST)
            except pg_errors.UniqueViolation:
                cur.execute(_INSERT_DEDUPE)
            return cur.rowcount

    def _gateways(self, plan: Plan) -> None:
        for gateway, site in sorted(plan.gateways.items()):
            self.conn.execute(
                "INSERT INTO telemetry.gateways (id, site) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET site = excluded.site, last_seen = now()",
                (gateway, site),
            )
        # decoded and checked whole in the plan (bad ones are dead letters there)
        for topic, state, raw in plan.states:
            self.conn.execute(
                "UPDATE telemetry.gateways SET status = %s, state = %s::jsonb WHERE id = %s",
                (state.status.value, raw.decode(), topic.gateway),
            )

    def _watermarks(self, plan: Plan) -> dict[StreamKey, int]:
        out: dict[StreamKey, int] = {}
        for key in sorted(plan.ranges, key=lambda k: (k.gateway, k.stream)):
            ranges = plan.ranges[key]
            row = self.conn.execute(
                "SELECT telemetry.commit_seq_ranges(%s, %s, %s::bigint[], %s::bigint[])",
                (key.gateway, key.stream, [r[0] for r in ranges], [r[1] for r in ranges]),
            ).fetchone()
            out[key] = int(row[0]) if row else 0
        return out
