"""The audit chain's external anchor: what a consistent re-hash or lost entries cannot hide.

The attacker here has the database's strongest logins — the owner of the tables (who may
disable their triggers and grant itself UPDATE) or a superuser — and rewrites the chain
the way the issue describes: edit an entry, re-hash every later entry with the
database's own ``erp.audit_hash``, move ``erp.audit_head``. The chain then checks out on
its own; the anchor file (HMAC with a key the database does not hold) does not.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core import jobs
from erp_core.app import create_app
from erp_core.audit import anchoring, keys
from erp_core.audit.errors import AnchorError
from erp_core.audit.service import set_actor, verify
from erp_core.audit.settings import RecordConfig
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import PASSWORDS, add_user, bearer, token_for

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

# Rewrite entry p_victim's actor and re-hash it and every later entry, then move the head:
# the chain is consistent again, as if it had always said so.
REHASH = """
DO $$
DECLARE
    e record;
    prev text := repeat('0', 64);
    h text;
    who text;
BEGIN
    FOR e IN SELECT * FROM erp.audit_log ORDER BY seq LOOP
        who := CASE WHEN e.seq = {victim} THEN 'mallory' ELSE e.actor END;
        h := erp.audit_hash(e.seq, e.at, e.table_name, e.action, e.row_key, e.old_values,
                            e.new_values, who, e.reason, prev, e.db_role);
        UPDATE erp.audit_log SET actor = who, prev_hash = prev, hash = h WHERE id = e.id;
        prev := h;
    END LOOP;
    UPDATE erp.audit_head SET hash = prev;
END $$;
"""


@pytest.fixture
def records(tmp_path: Path) -> tuple[keys.Keyring, Path]:
    key_file = tmp_path / "record.key"
    keys.new_key_file(key_file, key_id="k1")
    return keys.load(key_file), tmp_path / "anchors.jsonl"


def env_of(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "COLDTRACE_DATABASE_URL": db_url,
        "COLDTRACE_RECORD_KEY_FILE": str(tmp_path / "record.key"),
        "COLDTRACE_RECORD_ANCHOR_FILE": str(tmp_path / "anchors.jsonl"),
        "COLUMNS": "250",
    }


def cli_run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output


def users(db_url: str, *names: str) -> None:
    for name in names:
        add_user(db_url, name, ["operator"], "op-Pass-4711!")


def checkpoint(db_url: str, records: tuple[keys.Keyring, Path], at: datetime = T0):  # type: ignore[no-untyped-def]
    """A checkpoint; the first one of a file starts anchoring where the test chooses."""
    with psycopg.connect(db_url) as conn:
        return anchoring.checkpoint(
            conn, keyring=records[0], anchor_file=records[1], now=at, start=True
        )


def anchored(db_url: str, records: tuple[keys.Keyring, Path]) -> anchoring.AnchoredResult:
    with psycopg.connect(db_url) as conn:
        return anchoring.verify_anchored(conn, keyring=records[0], anchor_file=records[1])


def rewrite_as_owner(owner_db_url: str, victim: int) -> None:
    """The owner needs no superuser: it owns the table, its triggers and its privileges."""
    with psycopg.connect(owner_db_url) as conn:
        conn.execute("GRANT UPDATE ON erp.audit_log, erp.audit_head TO CURRENT_USER")
        conn.execute("ALTER TABLE erp.audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(REHASH.format(victim=victim))
        conn.execute("ALTER TABLE erp.audit_log ENABLE TRIGGER audit_log_append_only")


def rewrite_as_superuser(superuser_db_url: str, victim: int) -> None:
    with psycopg.connect(superuser_db_url) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers this session
        conn.execute(REHASH.format(victim=victim))


@pytest.fixture(params=["owner", "superuser"])
def rewrite(request: pytest.FixtureRequest, owner_db_url: str, superuser_db_url: str):  # type: ignore[no-untyped-def]
    if request.param == "owner":
        return lambda victim: rewrite_as_owner(owner_db_url, victim)
    return lambda victim: rewrite_as_superuser(superuser_db_url, victim)


def test_a_rehashed_chain_passes_its_own_check_but_fails_the_anchor(
    db_url: str, records: tuple[keys.Keyring, Path], rewrite, tmp_path: Path
) -> None:
    users(db_url, "ann", "ben", "cy")
    first = checkpoint(db_url, records)
    assert first is not None
    code, output = cli_run(["audit", "verify"], env_of(db_url, tmp_path))
    assert code == 0, output
    assert "intact" in output

    rewrite(2)

    with psycopg.connect(db_url) as conn:
        assert verify(conn).ok  # the chain alone is fooled: every hash and link fits again
        (actor,) = conn.execute("SELECT actor FROM erp.audit_log WHERE seq = 2").fetchone()
    assert actor == "mallory"
    result = anchored(db_url, records)
    assert result.status == "broken"
    assert result.anchors is not None
    assert result.anchors.problems == (
        (
            f"anchor line 1 (2026-12-06T08:00:00.000000Z): entry {first.seq} no longer has "
            f"the anchored hash: the chain was rewritten at or before entry {first.seq}"
        ),
    )
    code, output = cli_run(["audit", "verify"], env_of(db_url, tmp_path))
    assert code == 1
    assert "FAILS its anchor" in output
    # And nobody can anchor the rewritten chain: the checkpoint refuses, writing nothing.
    lines = records[1].read_text().splitlines()
    with pytest.raises(AnchorError, match="differs from its anchor"):
        checkpoint(db_url, records, T0 + timedelta(minutes=1))
    assert records[1].read_text().splitlines() == lines
    code, output = cli_run(["audit", "checkpoint"], env_of(db_url, tmp_path))
    assert code == 1
    assert "refusing to anchor" in output


def test_entries_lost_after_the_newest_anchor_are_detected(
    db_url: str, superuser_db_url: str, records: tuple[keys.Keyring, Path]
) -> None:
    users(db_url, "ann", "ben", "cy")
    anchor = checkpoint(db_url, records)
    assert anchor is not None
    with psycopg.connect(superuser_db_url) as conn:  # drop the last two, move the head back
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM erp.audit_log WHERE seq > %s", (anchor.seq - 2,))
        conn.execute(
            "UPDATE erp.audit_head SET seq = l.seq, hash = l.hash FROM erp.audit_log l"
            " WHERE l.seq = %s",
            (anchor.seq - 2,),
        )
    result = anchored(db_url, records)
    assert result.chain.ok
    assert result.status == "broken"
    assert result.anchors is not None
    (problem,) = result.anchors.problems
    assert f"entries {anchor.seq - 1}..{anchor.seq} are missing" in problem


def test_the_window_after_the_newest_anchor_is_covered_by_the_chain_only(
    db_url: str, superuser_db_url: str, records: tuple[keys.Keyring, Path]
) -> None:
    """Honest limit: entries appended after the newest checkpoint can be rewritten
    consistently without the anchor noticing — hence a short checkpoint interval."""
    users(db_url, "ann")
    anchor = checkpoint(db_url, records)
    assert anchor is not None
    users(db_url, "ben")
    rewrite_as_superuser(superuser_db_url, anchor.seq + 1)
    result = anchored(db_url, records)
    assert result.status == "intact"
    assert result.chain.head.seq > anchor.seq


def test_a_forged_edited_or_removed_anchor_line_is_named(
    db_url: str, records: tuple[keys.Keyring, Path]
) -> None:
    users(db_url, "ann")
    checkpoint(db_url, records)
    users(db_url, "ben")
    checkpoint(db_url, records, T0 + timedelta(minutes=1))
    users(db_url, "cy")
    checkpoint(db_url, records, T0 + timedelta(minutes=2))
    path = records[1]
    good = path.read_text().splitlines()
    assert len(good) == 3
    assert anchored(db_url, records).status == "intact"

    edited = json.loads(good[1])
    edited["seq"] -= 1  # claim an earlier entry, keep the MAC
    path.write_text("\n".join([good[0], json.dumps(edited), good[2]]) + "\n")
    problems = anchored(db_url, records).anchors.problems  # type: ignore[union-attr]
    assert "anchor line 2 is forged or edited: its MAC does not match" in problems

    path.write_text("\n".join([good[0], good[2]]) + "\n")  # the middle line removed
    problems = anchored(db_url, records).anchors.problems  # type: ignore[union-attr]
    assert problems == (
        "anchor line 2 does not follow the line before it: anchor lines were removed or re-ordered",
    )

    other = keys.Keyring((keys.RecordKey("k1", b"x" * 32),))  # same id, another secret
    path.write_text("\n".join(good) + "\n")
    with psycopg.connect(db_url) as conn:
        result = anchoring.verify_anchored(conn, keyring=other, anchor_file=path)
    assert result.status == "broken"
    # A writer refuses to extend a damaged file.
    path.write_text("\n".join([good[0], good[2]]) + "\n")
    users(db_url, "dee")
    with pytest.raises(AnchorError, match="damaged anchor file"):
        checkpoint(db_url, records, T0 + timedelta(minutes=3))


def test_checkpoint_writes_only_when_the_head_moved(
    db_url: str, records: tuple[keys.Keyring, Path]
) -> None:
    users(db_url, "ann")
    assert checkpoint(db_url, records) is not None
    assert checkpoint(db_url, records, T0 + timedelta(minutes=1)) is None
    users(db_url, "ben")
    later = checkpoint(db_url, records, T0 + timedelta(minutes=2))
    assert later is not None
    assert later.line == 2
    with psycopg.connect(db_url) as conn:
        assert later.seq == verify(conn).head.seq


def test_verify_without_anchors_says_unanchored(
    db_url: str, records: tuple[keys.Keyring, Path], tmp_path: Path
) -> None:
    users(db_url, "ann")
    code, output = cli_run(["audit", "verify"], env_of(db_url, tmp_path))
    assert code == 3
    assert "UNANCHORED" in output
    assert "does not exist" in output


def test_a_restore_that_lost_entries_can_be_acknowledged_and_anchored_again(
    db_url: str, superuser_db_url: str, records: tuple[keys.Keyring, Path], tmp_path: Path
) -> None:
    users(db_url, "ann", "ben")
    kept = checkpoint(db_url, records)
    users(db_url, "cy")
    lost = checkpoint(db_url, records, T0 + timedelta(minutes=1))
    assert kept is not None
    assert lost is not None
    with psycopg.connect(superuser_db_url) as conn:  # what a restore of an older dump leaves
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM erp.audit_log WHERE seq > %s", (kept.seq,))
        conn.execute("UPDATE erp.audit_head SET seq = %s, hash = %s", (kept.seq, kept.hash))
    assert anchored(db_url, records).status == "broken"
    env = env_of(db_url, tmp_path)
    code, output = cli_run(["audit", "acknowledge-restore", "--reason", "RITM-7: disk"], env)
    assert code == 0, output
    result = anchored(db_url, records)
    assert result.status == "intact"
    assert result.anchors is not None
    assert result.anchors.superseded == (lost,)
    (note,) = result.anchors.notes
    assert f"entries after {kept.seq} were lost (RITM-7: disk)" in note
    assert "by cli:" in note
    users(db_url, "dee")  # life goes on: the next checkpoint continues from the restore
    assert checkpoint(db_url, records, T0 + timedelta(minutes=5)) is not None
    assert anchored(db_url, records).status == "intact"
    code, output = cli_run(["audit", "acknowledge-restore", "--reason", "again"], env)
    assert code == 1
    assert "nothing was lost" in output


@pytest.fixture
def job_runner(db_url: str, records: tuple[keys.Keyring, Path]) -> Iterator[None]:
    stop = threading.Event()
    config = jobs.Anchoring(records[0], records[1], every_s=0.2)
    thread = threading.Thread(
        target=jobs.run, args=(db_url, stop), kwargs={"interval_s": 0.2, "anchoring": config}
    )
    thread.start()
    # as in a new installation: the runner anchors the empty trail before the first change
    # (it never starts a file for a trail that has entries; a person does, --start)
    deadline = time.monotonic() + 10
    while not anchoring.read_anchors(records[1], records[0])[0]:
        assert time.monotonic() < deadline, "the job runner wrote no first anchor"
        time.sleep(0.05)
    yield
    stop.set()
    thread.join(timeout=10)


def test_the_erp_jobs_anchor_the_head_periodically(
    db_url: str, records: tuple[keys.Keyring, Path], job_runner: None
) -> None:
    del job_runner
    for name in ("ann", "ben"):
        users(db_url, name)
        with psycopg.connect(db_url) as conn:
            head = verify(conn).head
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = anchoring.read_anchors(records[1], records[0])[0]
            if found and found[-1].seq == head.seq:
                break
            time.sleep(0.1)
        assert found[-1].hash == head.hash
    assert anchored(db_url, records).status == "intact"


def test_the_database_role_of_each_change_is_recorded(
    db_url: str, owner_db_url: str, records: tuple[keys.Keyring, Path]
) -> None:
    """A direct write with another database login is visible whatever actor it claims."""
    users(db_url, "ann")
    with psycopg.connect(owner_db_url) as conn:
        set_actor(conn, user="qa-lena", reason="looks like the app")
        conn.execute("UPDATE erp.users SET full_name = 'Ann X' WHERE username = 'ann'")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT actor, db_role FROM erp.audit_log WHERE table_name = 'erp.users' ORDER BY seq"
        ).fetchall()
    # the fixture's INSERT and the binding of its hash, then the owner's write
    assert rows == [("test-setup", "coldtrace_app")] * 2 + [("qa-lena", "coldtrace")]
    assert checkpoint(db_url, records) is not None
    assert anchored(db_url, records).status == "intact"


def test_the_api_verify_holds_the_chain_against_the_anchors(
    db_url: str, superuser_db_url: str, records: tuple[keys.Keyring, Path]
) -> None:
    add_user(db_url, "boss", ["qa_manager"], PASSWORDS["qa_manager"], keyring=records[0])
    settings = ApiSettings(database_url=db_url, jwt_secret=SecretStr("s" * 40))
    app = create_app(settings, clock=lambda: T0, records=RecordConfig(records[0], records[1]))
    with TestClient(app) as client:
        auth = bearer(token_for(client, "boss", PASSWORDS["qa_manager"]))
        before = client.get("/api/audit/verify", headers=auth).json()
        assert (before["ok"], before["status"], before["anchors"]) == (True, "unanchored", 0)
        anchor = checkpoint(db_url, records)
        assert anchor is not None
        intact = client.get("/api/audit/verify", headers=auth).json()
        assert (intact["status"], intact["anchored_seq"]) == ("intact", anchor.seq)
        rewrite_as_superuser(superuser_db_url, 1)
        broken = client.get("/api/audit/verify", headers=auth).json()
    assert (broken["ok"], broken["status"], broken["problem"]) == (False, "broken", None)
    (problem,) = broken["anchor_problems"]
    assert f"entry {anchor.seq} no longer has the anchored hash" in problem
