"""PostgreSQL adapter: write one plan in one transaction (COPY straight into readings).

Readings are unique on (sensor, time). The common path is one binary COPY straight
into ``telemetry.readings`` inside a savepoint: no staging table, no insert-select,
about the cost of a raw COPY (docs/benchmarks.md, issue 13). Only when that COPY hits
a unique violation — a re-delivery, or a time already stored with another value — is
the savepoint rolled back and the batch taken the careful way: COPY into a staging
table, ``INSERT … SELECT … ON CONFLICT DO NOTHING``, and a dead letter for each
reading whose stored value differs. Either way the committed watermark of each
gateway stream is advanced in the same transaction, so "acked" always means "stored".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import errors as pg_errors

from ingest import dead_letters
from ingest.copy_rows import COLUMNS, Spans, encode_rows
from ingest.dead_letters import DeadLetter
from ingest.errors import StoreError
from ingest.events import store_events
from ingest.plan import Plan, StreamKey, merge_ranges
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
# (measured: docs/benchmarks.md). So the common path copies straight into the table in
# a savepoint and takes this conflict-absorbing statement only on a unique violation.
_INSERT_DEDUPE = _SELECT + "ON CONFLICT DO NOTHING"
_COPY_DIRECT = f"COPY telemetry.readings ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
# After the conflict-absorbing insert: staged readings whose (sensor, time) holds another
# value or flags. A re-delivery carries the same; anything else was there first (written
# ahead of the gateway by a database writer, or a device that rewrote its history).
_CONFLICTS = """
SELECT s.sensor_id, s.t_ms, r.value, r.flags
  FROM readings_stage s
  JOIN telemetry.readings r
    ON r.sensor_id = s.sensor_id
   AND r.time = timestamptz 'epoch' + s.t_ms * interval '1 millisecond'
 WHERE r.value IS DISTINCT FROM s.value OR r.flags IS DISTINCT FROM s.flags
"""
_COPY = "COPY readings_stage (sensor_id, t_ms, value, flags, seq) FROM STDIN (FORMAT BINARY)"
# the ranges this batch touched, queued for excursion evaluation in the same transaction
_PENDING_SPANS = """
INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t)
SELECT sensor_id, timestamptz 'epoch' + lo * interval '1 millisecond',
       timestamptz 'epoch' + hi * interval '1 millisecond'
  FROM unnest(%s::int[], %s::bigint[], %s::bigint[]) AS k(sensor_id, lo, hi)
"""
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

    A gateway has at most ``max_per_gateway`` sensors: each new uid used to become a row
    and an entry here for ever, so one stolen gateway credential made 10,000 sensors per
    message (50,000 a second measured) until disk or memory ran out. Sensors past the
    limit are not created; ``resolve`` returns them, and their readings are not stored.
    Two workers may each admit the last free places at once: the limit can be passed by
    at most one batch per worker.
    """

    def __init__(self, *, max_per_gateway: int | None = None) -> None:
        self._ids: dict[tuple[str, str, str], int] = {}
        self.max_per_gateway = max_per_gateway

    def resolve(
        self, conn: psycopg.Connection, readings: list[tuple[str, int, Reading]]
    ) -> set[tuple[str, str, str]]:
        """Make sure every sensor of ``readings`` has an id (commits new sensors at once).

        Returns the (gateway, uid, quantity) keys refused because their gateway has
        reached ``max_per_gateway`` sensors.
        """
        missing: dict[tuple[str, str, str], str] = {}
        for gateway, _seq, r in readings:
            key = (gateway, r.sensor, r.qty)
            if key not in self._ids and key not in missing:
                missing[key] = r.unit
        if not missing:
            return set()
        with conn.transaction():
            self._load(conn, list(missing))
            new = {k: u for k, u in missing.items() if k not in self._ids}
            refused = self._over_limit(conn, list(new))
            create = {k: u for k, u in new.items() if k not in refused}
            if create:
                conn.execute(
                    "INSERT INTO telemetry.sensors (gateway_id, uid, quantity, unit) "
                    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
                    "ON CONFLICT (gateway_id, uid, quantity) DO NOTHING",
                    (
                        [k[0] for k in create],
                        [k[1] for k in create],
                        [k[2] for k in create],
                        list(create.values()),
                    ),
                )
                self._load(conn, list(create))
        return refused

    def _load(self, conn: psycopg.Connection, keys: list[tuple[str, str, str]]) -> None:
        rows = conn.execute(
            "SELECT s.id, s.gateway_id, s.uid, s.quantity FROM telemetry.sensors s "
            "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(gateway_id, uid, quantity) "
            "USING (gateway_id, uid, quantity)",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        ).fetchall()
        for sensor_id, gateway, uid, qty in rows:
            self._ids[(gateway, uid, qty)] = sensor_id

    def _over_limit(
        self, conn: psycopg.Connection, new: list[tuple[str, str, str]]
    ) -> set[tuple[str, str, str]]:
        """The keys of ``new`` (in order) that would take a gateway past its limit."""
        if self.max_per_gateway is None or not new:
            return set()
        gateways = sorted({k[0] for k in new})
        counts: dict[str, int] = dict(
            conn.execute(
                "SELECT gateway_id, count(*) FROM telemetry.sensors"
                " WHERE gateway_id = ANY(%s) GROUP BY gateway_id",
                (gateways,),
            ).fetchall()
        )
        free = {g: self.max_per_gateway - int(counts.get(g, 0)) for g in gateways}
        refused: set[tuple[str, str, str]] = set()
        for key in new:
            if free[key[0]] > 0:
                free[key[0]] -= 1
            else:
                refused.add(key)
        return refused

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        return key in self._ids

    def __getitem__(self, key: tuple[str, str, str]) -> int:
        return self._ids[key]


def sensor_limit_letters(
    plan: Plan, refused: set[tuple[str, str, str]], *, limit: int | None
) -> list[DeadLetter]:
    """One dead letter per gateway whose new sensors were refused (pure).

    Keyed by the gateway alone (a constant payload), so a flood of made-up uids adds
    one row that counts up, not a row per reading.
    """
    letters = []
    for gateway in sorted({k[0] for k in refused}):
        uids = sorted(f"{k[1]} ({k[2]})" for k in refused if k[0] == gateway)
        site = plan.gateways.get(gateway, "+")
        reason = (
            f"gateway {gateway} has reached its limit of {limit} sensors "
            "(COLDTRACE_INGEST_MAX_SENSORS_PER_GATEWAY): readings of sensors it has not "
            f"reported before are not stored; refused here: {len(uids)}, e.g. "
            + ", ".join(uids[:5])
        )
        payload = f"sensor limit reached by gateway {gateway}".encode()
        letters.append(DeadLetter(f"ct/v1/{site}/{gateway}/readings", reason, payload, gateway))
    return letters


def conflict_letters(
    readings: list[tuple[str, int, Reading]],
    found: list[tuple[int, int, float | None, int | None]],
    ids: SensorCache,
    plan: Plan,
) -> list[DeadLetter]:
    """Dead letters for readings whose time was already stored with another value (pure).

    The payload is the gateway's reading with its seq, so a person has the value that
    was not stored; a re-sent copy is the same dead letter (same topic and payload).
    """
    stored = {(sensor_id, t_ms): (value, flags) for sensor_id, t_ms, value, flags in found}
    letters = []
    for gw, seq, r in readings:
        there = stored.get((ids[(gw, r.sensor, r.qty)], r.t))
        if there is None or (there[0] == r.value and there[1] == r.flags):
            continue  # no conflict, or the copy stored from this very batch
        at = datetime.fromtimestamp(r.t / 1000, UTC).isoformat(timespec="milliseconds")
        reason = (
            f"reading of {r.sensor} ({r.qty}) at {at} is already stored with another value "
            f"({there[0]}, flags {there[1]}); this one ({r.value}, flags {r.flags}) is not "
            "stored (readings are immutable). A re-delivery carries the same value: find out "
            "who or what wrote the stored one"
        )
        item = {"sensor": r.sensor, "qty": r.qty, "t": r.t, "value": r.value, "unit": r.unit}
        payload = json.dumps(item | {"flags": r.flags, "seq": seq}, sort_keys=True).encode()
        topic = f"ct/v1/{plan.gateways.get(gw, '+')}/{gw}/readings"
        letters.append(DeadLetter(topic, reason, payload, gw))
    return letters


class Store:
    """Writes plans through one connection owned by the caller."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        dead_letter_payload_bytes: int = 8192,
        max_sensors_per_gateway: int | None = None,
    ) -> None:
        self.conn = conn
        self.dead_letter_payload_bytes = dead_letter_payload_bytes
        self.sensors = SensorCache(max_per_gateway=max_sensors_per_gateway)
        conn.execute(_STAGE)
        conn.commit()

    def write(self, plan: Plan) -> WriteResult:
        """Store ``plan`` in one transaction and return the new watermarks."""
        readings, letters = plan.readings, plan.dead_letters
        try:
            refused = self.sensors.resolve(self.conn, plan.readings)
            if refused:
                readings = [r for r in readings if (r[0], r[2].sensor, r[2].qty) in self.sensors]
                limit = self.sensors.max_per_gateway
                letters = letters + sensor_limit_letters(plan, refused, limit=limit)
            with self.conn.transaction():
                stored, conflicts = self._copy_readings(readings, plan)
                letters = letters + conflicts
                store_events(self.conn, plan.events)
                new_letters = dead_letters.write(
                    self.conn, letters, payload_bytes=self.dead_letter_payload_bytes
                )
                self._gateways(plan)
                watermarks = self._watermarks(plan)
        except psycopg.Error as err:
            raise StoreError(f"writing {plan.messages} messages failed: {err}") from err
        return WriteResult(
            stored=stored,
            duplicates=len(readings) - stored,
            dead_letters=len(letters),
            watermarks=watermarks,
            dead_letters_repeated=len(letters) - new_letters,
        )

    def _copy_readings(
        self, readings: list[tuple[str, int, Reading]], plan: Plan
    ) -> tuple[int, list[DeadLetter]]:
        """COPY ``readings`` in; (how many were new, dead letters for conflicting ones).

        Also queues the touched ranges for evaluation, in the caller's transaction.
        """
        if not readings:
            return 0, []
        data, spans = encode_rows(readings, self.sensors.__getitem__)
        try:
            with (
                self.conn.transaction(),  # a savepoint
                self.conn.cursor() as cur,
                cur.copy(_COPY_DIRECT) as copy,
            ):
                copy.write(data)
        except pg_errors.UniqueViolation:
            return self._copy_via_stage(readings, plan)
        self._pending(spans)
        return len(readings), []

    def _pending(self, spans: Spans) -> None:
        ids = sorted(spans)
        self.conn.execute(
            _PENDING_SPANS, (ids, [spans[i][0] for i in ids], [spans[i][1] for i in ids])
        )

    def _copy_via_stage(
        self, readings: list[tuple[str, int, Reading]], plan: Plan
    ) -> tuple[int, list[DeadLetter]]:
        """The path for a batch with a duplicate: staging table, ON CONFLICT, conflict check."""
        ids = self.sensors
        with self.conn.cursor() as cur:
            with cur.copy(_COPY) as copy:
                copy.set_types(["int4", "int8", "float8", "int4", "int8"])
                write = copy.write_row
                for gw, seq, r in readings:
                    write((ids[(gw, r.sensor, r.qty)], r.t, r.value, r.flags, seq))
            cur.execute(_INSERT_DEDUPE)
            stored = cur.rowcount
            found = cur.execute(_CONFLICTS).fetchall()
            cur.execute(_PENDING)
            return stored, conflict_letters(readings, found, ids, plan)

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
            ranges = merge_ranges(plan.ranges[key])
            row = self.conn.execute(
                "SELECT telemetry.commit_seq_ranges(%s, %s, %s::bigint[], %s::bigint[])",
                (key.gateway, key.stream, [r[0] for r in ranges], [r[1] for r in ranges]),
            ).fetchone()
            out[key] = int(row[0]) if row else 0
        return out
