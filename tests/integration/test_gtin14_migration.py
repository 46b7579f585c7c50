"""Migration 0021 on databases with data in them: GTINs become GTIN-14, two forms merge or stop.

A fresh database is migrated to the revision before 0021 and given what the old code let
through: the GTIN-13 and the GTIN-14 form of one product as two items, each with lots,
besides items under GTIN-8, GTIN-12 and GTIN-14. Then it is upgraded:

* when the two items agree on every field of master data and share no lot number, they
  become one item (the oldest), holding every lot, each step in the audit trail;
* when they disagree, the upgrade stops, changes nothing and names both items with what
  differs — and the manual fix of docs/master-data.md, applied, lets it through.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from db import migrate
from db.migrate import alembic_config
from db.settings import DatabaseSettings
from erp_core.audit.service import entries_for, verify
from erp_core.lots.service import find_lot
from identifiers.gtin import to_gtin14
from tests.fix_services import ADMIN_URL

pytestmark = pytest.mark.timeout(240)

GRAFT_13, GRAFT_14 = "4006381333931", "04006381333931"  # one product, two forms
UPC_12, UPC_14 = "036000291452", "00036000291452"
EAN_8 = "96385074"
OTHER_14 = "09506000134352"
ACTOR = "system:migration-0021"


def sqlalchemy_url(url: str) -> str:
    return DatabaseSettings(url=url).sqlalchemy_url


def before_0021(url: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(sqlalchemy_url(url))).get_revision("0021")
    assert script is not None
    assert isinstance(script.down_revision, str)
    return script.down_revision


@pytest.fixture
def old_db() -> Iterator[str]:
    """A database at the revision before 0021 (the owner's login)."""
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/ct_mig_{uuid.uuid4().hex[:10]}"
    migrate.upgrade(url, sqlalchemy_url(url), before_0021(url))
    yield url
    migrate.drop_database(url)


def upgrade(url: str) -> None:
    migrate.upgrade(url, sqlalchemy_url(url), "0021")


def as_user(conn: psycopg.Connection[Any], user: str, reason: str) -> None:
    conn.execute(
        "SELECT set_config('coldtrace.user', %s, true), set_config('coldtrace.reason', %s, true)",
        (user, reason),
    )


def item(conn: psycopg.Connection[Any], gtin: str, name: str = "Graft", mkt: float = 8.0) -> int:
    row = conn.execute(
        "INSERT INTO erp.items (gtin, name, range_low, range_high, mkt_limit, "
        "tor_budget_minutes, shelf_life_days, implantable) "
        "VALUES (%s, %s, 2, 8, %s, 30, 730, true) RETURNING id",
        (gtin, name, mkt),
    ).fetchone()
    assert row is not None
    return int(row[0])


def lot(conn: psycopg.Connection[Any], item_id: int, number: str) -> int:
    row = conn.execute(
        "INSERT INTO erp.lots (item_id, lot_number, expires_on, quantity)"
        " VALUES (%s, %s, '2028-01-31', 10) RETURNING id",
        (item_id, number),
    ).fetchone()
    assert row is not None
    return int(row[0])


def tag(conn: psycopg.Connection[Any], lot_id: int, gtin: str, serial: str) -> int:
    row = conn.execute(
        "INSERT INTO erp.lot_tags (lot_id, gtin, serial) VALUES (%s, %s, %s) RETURNING id",
        (lot_id, gtin, serial),
    ).fetchone()
    assert row is not None
    return int(row[0])


def gtins(conn: psycopg.Connection[Any]) -> dict[int, str]:
    return dict(conn.execute("SELECT id, gtin FROM erp.items").fetchall())


def test_two_forms_with_the_same_master_data_become_one_item(old_db: str) -> None:
    with psycopg.connect(old_db) as conn:
        as_user(conn, "admin", "entered before 0021")
        graft13 = item(conn, GRAFT_13)
        graft14 = item(conn, GRAFT_14)  # the same product, typed the other way
        ean8, upc12, other = item(conn, EAN_8), item(conn, UPC_12), item(conn, OTHER_14)
        lots = {
            "L1": lot(conn, graft13, "L1"),
            "L2": lot(conn, graft14, "L2"),
            "E1": lot(conn, ean8, "E1"),
        }
        case = tag(conn, lots["L2"], GRAFT_14, "7")
        # the old lookup: both items match the padded GTIN, find_lot takes either
        rows = conn.execute(
            "SELECT count(*) FROM erp.items WHERE lpad(gtin, 14, '0') = lpad(%s, 14, '0')",
            (GRAFT_13,),
        ).fetchone()
        assert rows == (2,)

    upgrade(old_db)

    with psycopg.connect(old_db) as conn:
        # every GTIN is GTIN-14, by the one rule; the duplicate is gone into the oldest
        assert gtins(conn) == {
            graft13: to_gtin14(GRAFT_13),
            ean8: to_gtin14(EAN_8),
            upc12: to_gtin14(UPC_12),
            other: OTHER_14,
        }
        assert to_gtin14(GRAFT_13) == GRAFT_14
        # every lot kept its id (signed decisions name lot ids) and is the one item's
        held = dict(conn.execute("SELECT id, item_id FROM erp.lots").fetchall())
        assert held == {lots["L1"]: graft13, lots["L2"]: graft13, lots["E1"]: ean8}
        # either form finds the one lot
        for form in (GRAFT_13, GRAFT_14):
            assert find_lot(conn, gtin=form, lot_number="L2").id == lots["L2"]
            assert find_lot(conn, gtin=form, lot_number="L1").id == lots["L1"]
        assert conn.execute("SELECT gtin FROM erp.lot_tags WHERE id = %s", (case,)).fetchone() == (
            GRAFT_14,
        )

        # the audit trail says what happened and why, and still verifies
        deleted = [e for e in entries_for(conn, table="erp.items") if e.action == "DELETE"]
        assert len(deleted) == 1
        assert deleted[0].row_key == {"id": graft14}
        assert deleted[0].old_values is not None
        assert deleted[0].old_values["gtin"] == GRAFT_14
        assert deleted[0].actor == ACTOR
        assert deleted[0].reason is not None
        assert f"merged into item {graft13}" in deleted[0].reason
        moved = entries_for(conn, table="erp.lots", key={"id": lots["L2"]})
        assert (moved[0].action, moved[0].actor) == ("UPDATE", ACTOR)
        assert moved[0].old_values is not None
        assert moved[0].new_values is not None
        assert (moved[0].old_values["item_id"], moved[0].new_values["item_id"]) == (
            graft14,
            graft13,
        )
        padded = entries_for(conn, table="erp.items", key={"id": ean8})[0]
        assert (padded.action, padded.actor) == ("UPDATE", ACTOR)
        assert padded.new_values is not None
        assert padded.new_values["gtin"] == "00000096385074"
        assert verify(conn).ok

        # from now on the database refuses a second form, whatever path writes
        as_user(conn, "admin", "test")
        with pytest.raises(psycopg.errors.CheckViolation, match="items_gtin_is_gtin14"):
            item(conn, GRAFT_13)
        conn.rollback()
        as_user(conn, "admin", "test")
        with pytest.raises(psycopg.errors.UniqueViolation):
            item(conn, GRAFT_14)
        conn.rollback()
        as_user(conn, "admin", "test")
        with pytest.raises(psycopg.errors.CheckViolation, match="items_gtin_is_gtin14"):
            item(conn, "04006381333932")  # 14 digits, wrong check digit
        conn.rollback()
        as_user(conn, "admin", "test")
        with pytest.raises(psycopg.errors.CheckViolation, match="lot_tags_gtin_is_gtin14"):
            tag(conn, lots["L1"], "04006381333932", "8")


def test_two_forms_that_disagree_stop_the_upgrade_until_a_person_decides(old_db: str) -> None:
    with psycopg.connect(old_db) as conn:
        as_user(conn, "admin", "entered before 0021")
        graft13 = item(conn, GRAFT_13, name="Graft")
        graft14 = item(conn, GRAFT_14, name="Graft 6 mm", mkt=7.0)
        upc12, upc14 = item(conn, UPC_12), item(conn, UPC_14)  # a group that is safe
        first = lot(conn, graft13, "L1")
        second = lot(conn, graft14, "L1")  # the same lot number under both
        lot(conn, upc14, "U1")
        bad_tag = tag(conn, first, "04006381333932", "9")  # passed the old 14-digit CHECK
    before = before_0021(old_db)

    with pytest.raises(CommandError) as refused:
        upgrade(old_db)
    report = str(refused.value)
    assert f"item {graft13} 'Graft' (GTIN {GRAFT_13})" in report
    assert f"item {graft14} 'Graft 6 mm' (GTIN {GRAFT_14})" in report
    assert "name differs ('Graft' / 'Graft 6 mm')" in report
    assert "mkt_limit differs (8.0 / 7.0)" in report
    assert "lot numbers used under more than one of them: L1" in report
    assert f"erp.lot_tags id {bad_tag}" in report
    assert "docs/master-data.md" in report
    assert f"item {upc12}" not in report  # the safe group is not a problem

    # nothing changed, not even the group that was safe to merge
    with psycopg.connect(old_db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (before,)
        assert gtins(conn) == {graft13: GRAFT_13, graft14: GRAFT_14, upc12: UPC_12, upc14: UPC_14}

    # `coldtrace db upgrade` prints the report and exits 1, without a traceback
    result = CliRunner().invoke(
        cli,
        ["db", "upgrade", "0021"],
        env={"COLDTRACE_DATABASE_OWNER_URL": old_db, "COLUMNS": "200"},
    )
    assert result.exit_code == 1
    assert f"item {graft14} 'Graft 6 mm' (GTIN {GRAFT_14})" in result.output
    assert "Traceback" not in result.output

    # the manual fix of docs/master-data.md: QA decides, an audited change makes it so
    with psycopg.connect(old_db) as conn:
        as_user(conn, "qa-lead", "GTIN-14 merge: one product; name and MKT limit as on the IFU")
        conn.execute("UPDATE erp.items SET name = 'Graft', mkt_limit = 8 WHERE id = %s", (graft14,))
        conn.execute("UPDATE erp.lots SET lot_number = 'L1-B' WHERE id = %s", (second,))
        conn.execute("DELETE FROM erp.lot_tags WHERE id = %s", (bad_tag,))
    upgrade(old_db)

    with psycopg.connect(old_db) as conn:
        assert gtins(conn) == {graft13: GRAFT_14, upc12: UPC_14}
        assert find_lot(conn, gtin=GRAFT_13, lot_number="L1").id == first
        assert find_lot(conn, gtin=GRAFT_14, lot_number="L1-B").id == second
        assert find_lot(conn, gtin=UPC_12, lot_number="U1").id > 0
        assert verify(conn).ok


def test_downgrade_keeps_the_gtin14_values(old_db: str) -> None:
    with psycopg.connect(old_db) as conn:
        as_user(conn, "admin", "entered before 0021")
        ean8 = item(conn, EAN_8)
    upgrade(old_db)
    command.downgrade(alembic_config(sqlalchemy_url(old_db)), before_0021(old_db))
    with psycopg.connect(old_db) as conn:
        assert gtins(conn) == {ean8: "00000096385074"}
        as_user(conn, "admin", "test")
        # the old constraint is back: any valid form is accepted again
        assert item(conn, "4006381333931", name="x") > ean8
