"""Migration 0016 on a database with data in it: wrapped flags restored, dead letters keyed."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from psycopg import errors

from db import migrate
from db.migrate import alembic_config
from db.settings import DatabaseSettings
from ingest import dead_letters
from ingest.dead_letters import DeadLetter
from tests.fix_services import ADMIN_URL

pytestmark = pytest.mark.timeout(180)

TOPIC = "ct/v1/plant-1/gw-1/readings"


@pytest.fixture
def fresh_db() -> Iterator[DatabaseSettings]:
    name = f"ct_mig_{uuid.uuid4().hex[:10]}"
    settings = DatabaseSettings(url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    try:
        yield settings
    finally:
        migrate.drop_database(settings.url)


def test_flags_unwrapped_and_dead_letters_keyed(fresh_db: DatabaseSettings) -> None:
    cfg = alembic_config(fresh_db.sqlalchemy_url)
    script = ScriptDirectory.from_config(cfg).get_revision("0016")
    assert script is not None
    before = script.down_revision
    assert isinstance(before, str)
    migrate.upgrade(fresh_db.url, fresh_db.sqlalchemy_url, before)
    with psycopg.connect(fresh_db.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('fridge-a', 'door', '1', 'gw-1')"
        )
        # what the binary COPY of smallint made of 65535, 32768 and friends
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value, flags)"
            " SELECT now() - i * interval '1 min', 1, 0, f"
            " FROM unnest(ARRAY[-1, -32768, 0, 32767, 5]::smallint[]) WITH ORDINALITY AS u(f, i)"
        )
        old_letters = [
            (TOPIC, "s1", 5, b'{"value":"warm"}'),
            (TOPIC, "s1", 5, b'{"value": "warm"}'),  # the same item, re-sent
            (TOPIC, None, None, b"junk"),
            (TOPIC, None, None, b"junk"),  # the same message, re-sent
            (TOPIC, None, None, b"other junk"),
        ]
        for topic, stream, seq, payload in old_letters:
            conn.execute(
                "INSERT INTO telemetry.dead_letters (topic, gateway_id, stream, seq, reason,"
                " payload) VALUES (%s, 'gw-1', %s, %s, 'bad', %s)",
                (topic, stream, seq, payload),
            )

    migrate.upgrade(fresh_db.url, fresh_db.sqlalchemy_url, "0016")

    with psycopg.connect(fresh_db.url, autocommit=True) as conn:
        flags = conn.execute("SELECT flags FROM telemetry.readings ORDER BY time DESC").fetchall()
        assert [f for (f,) in flags] == [65535, 32768, 0, 32767, 5]
        with pytest.raises(errors.CheckViolation):
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value, flags)"
                " VALUES (now(), 1, 0, 65536)"
            )

        letters = conn.execute(
            "SELECT payload, payload_size, payload_sha256, dedupe_key, times_received"
            " FROM telemetry.dead_letters ORDER BY id"
        ).fetchall()
        for (payload, size, sha, _, times), (*_, original) in zip(
            letters, old_letters, strict=True
        ):
            assert (bytes(payload), size, bytes(sha)) == (
                original,
                len(original),
                hashlib.sha256(original).digest(),
            )
            assert times == 1
        # SQL and Python compute the same keys; of duplicates only the first has one
        assert [k for *_, k, _ in letters] == [
            DeadLetter(TOPIC, "", b'{"value":"warm"}', "gw-1", "s1", 5).dedupe_key,
            None,
            DeadLetter(TOPIC, "", b"junk").dedupe_key,
            None,
            DeadLetter(TOPIC, "", b"other junk").dedupe_key,
        ]
        with conn.transaction():  # re-sent once more after the upgrade: no new row
            written = dead_letters.write(
                conn,
                [
                    DeadLetter(TOPIC, "bad", b"junk"),
                    DeadLetter(TOPIC, "bad", b"x", "gw-1", "s1", 5),
                ],
                payload_bytes=100,
            )
        assert written == 0
        assert conn.execute("SELECT count(*) FROM telemetry.dead_letters").fetchone() == (5,)
        times = conn.execute(
            "SELECT times_received FROM telemetry.dead_letters ORDER BY id"
        ).fetchall()
        assert [t for (t,) in times] == [2, 1, 2, 1, 1]

    command.downgrade(cfg, before)
    with psycopg.connect(fresh_db.url) as conn:
        flags = conn.execute("SELECT flags FROM telemetry.readings ORDER BY time DESC").fetchall()
        assert [f for (f,) in flags] == [-1, -32768, 0, 32767, 5]
