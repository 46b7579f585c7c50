"""One stored form of a GTIN: GTIN-14. Two forms of one GTIN that made two items are merged
when that is safe, else the migration stops and names them.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-08

GTINs were stored as typed (8, 12, 13 or 14 digits) and compared after zero-padding, so
``4006381333931`` and ``04006381333931`` — one product — could be two items, and
``find_lot`` picked one of them (issue 10). From here on every stored GTIN is the
GTIN-14 form (GS1 General Specifications Figure 3.3.2-1: the number right-justified in
14 digits with leading zeros), and a CHECK refuses any other, whatever path writes.

Column by column (docs/master-data.md, "GTIN identity"):

* ``erp.items.gtin`` — the item's identity: brought to GTIN-14. Items that become the
  same GTIN-14 are merged into the oldest (lowest id) when that is *safe*: every field
  of master data agrees (name, storage range, alarm profile, MKT limit, TOR budget,
  shelf life, implantable, retired or not) and no lot number is used under two of them.
  The other items' lots move to it (their lot ids, and so every signed release decision,
  stay as they were) and the other items are deleted; each step is an audited change by
  ``system:migration-0021`` with the reason. When any group is not safe nothing is
  changed: the migration fails with a report naming the items, what differs, and the
  manual fix.
* ``erp.lot_tags.gtin`` — an identity too (it names the tagged case): already 14 digits
  by its CHECK; the check digit is now checked as well. A registration with a wrong
  check digit (it could match no SGTIN read) stops the migration with its id.
* ``telemetry.scans.gtin`` / ``di`` and ``telemetry.tag_reads.gtin`` — records of what a
  reader saw, owned by ingest: kept as read. The ERP brings a read GTIN to GTIN-14 before
  looking it up (``erp_core.stock.master.gtin14``).

The GTIN-14 form is computed here in SQL with ``lpad(gtin, 14, '0')``: every stored
item GTIN already passed ``erp.gtin_valid`` (8, 12, 13 or 14 digits and a correct check
digit), and for such a value that is exactly ``identifiers.gtin.to_gtin14`` (the schema
package imports no application code). The downgrade restores the old constraints; the
GTINs stay GTIN-14 (valid under them) and merged items stay merged.
"""

from __future__ import annotations

import logging
from typing import Any

from alembic import op
from alembic.util import CommandError

revision = "0021"
down_revision = "0019"
branch_labels = None
depends_on = None

ACTOR = "system:migration-0021"
FIX = "docs/master-data.md, section 'Two items of one GTIN'"
log = logging.getLogger("alembic")

# master data that must agree for two items to be one (name, value shown in the report)
_FIELDS = (
    "name",
    "range_low",
    "range_high",
    "alarm_profile_id",
    "mkt_limit",
    "tor_budget_minutes",
    "shelf_life_days",
    "implantable",
    "retired",
)
_ITEMS = f"""
SELECT id, gtin, {", ".join(_FIELDS[:-1])}, retired_at IS NOT NULL AS retired
  FROM erp.items WHERE lpad(gtin, 14, '0') = %s ORDER BY id
"""  # noqa: S608 - constant SQL

CONSTRAINTS = """
ALTER TABLE erp.items DROP CONSTRAINT items_gtin_check;
ALTER TABLE erp.items ADD CONSTRAINT items_gtin_is_gtin14
    CHECK (gtin ~ '^[0-9]{14}$' AND erp.gtin_valid(gtin));
COMMENT ON COLUMN erp.items.gtin IS
    'GTIN-14 (GTIN-8/12/13 with leading zeros), valid check digit: one product, one item.';
ALTER TABLE erp.lot_tags DROP CONSTRAINT lot_tags_gtin_check;
ALTER TABLE erp.lot_tags ADD CONSTRAINT lot_tags_gtin_is_gtin14
    CHECK (gtin ~ '^[0-9]{14}$' AND erp.gtin_valid(gtin));
COMMENT ON COLUMN erp.lot_tags.gtin IS 'GTIN-14 of the tagged case, valid check digit.';
"""


def _as_actor(bind: Any, reason: str) -> None:
    """Name this migration as the actor of the audited changes that follow."""
    bind.exec_driver_sql(
        "SELECT set_config('coldtrace.user', %s, true), set_config('coldtrace.reason', %s, true)",
        (ACTOR, reason),
    )


def _groups(bind: Any) -> list[str]:
    """The GTIN-14s that more than one item becomes."""
    rows = bind.exec_driver_sql(
        "SELECT lpad(gtin, 14, '0') FROM erp.items GROUP BY 1 HAVING count(*) > 1 ORDER BY 1"
    ).fetchall()
    return [str(g) for (g,) in rows]


def _conflicts(bind: Any, gtin14: str) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The group's items, and why they may not be merged ([] if they may)."""
    items = bind.exec_driver_sql(_ITEMS, (gtin14,)).fetchall()
    why = []
    for i, field in enumerate(_FIELDS, start=2):
        values = [row[i] for row in items]
        if any(v != values[0] for v in values[1:]):
            shown = " / ".join(repr(v) for v in values)
            why.append(f"{field} differs ({shown})")
    shared = bind.exec_driver_sql(
        "SELECT lot_number FROM erp.lots WHERE item_id = ANY(%s)"
        " GROUP BY lot_number HAVING count(*) > 1 ORDER BY 1",
        ([row[0] for row in items],),
    ).fetchall()
    if shared:
        numbers = ", ".join(str(n) for (n,) in shared)
        why.append(f"lot numbers used under more than one of them: {numbers}")
    return items, why


def _bad_lot_tags(bind: Any) -> list[str]:
    rows = bind.exec_driver_sql(
        "SELECT id, lot_id, gtin, serial FROM erp.lot_tags"
        " WHERE gtin IS NOT NULL AND NOT erp.gtin_valid(gtin) ORDER BY id"
    ).fetchall()
    return [
        f"erp.lot_tags id {tag_id} (lot {lot_id}, GTIN {gtin}, serial {serial}): the GTIN's "
        "check digit is wrong, so no SGTIN read can match it; delete or correct it"
        for tag_id, lot_id, gtin, serial in rows
    ]


def _report(refused: list[tuple[str, list[tuple[Any, ...]], list[str]]], tags: list[str]) -> str:
    lines = [
        (
            "migration 0021 (GTIN-14) changed nothing: some GTINs cannot be stored as GTIN-14 "
            "without a decision only a person can make."
        )
    ]
    for gtin14, items, why in refused:
        named = " and ".join(f"item {row[0]} {row[2]!r} (GTIN {row[1]})" for row in items)
        lines.append(f"* GTIN-14 {gtin14}: {named} are one product but {'; '.join(why)}.")
    lines.extend(f"* {tag}" for tag in tags)
    lines.append(
        "Make the master data of each pair agree (or correct a wrong GTIN, or renumber a "
        f"clashing lot) with an audited change, then run the upgrade again: see {FIX}."
    )
    return "\n".join(lines)


def _merge(bind: Any, gtin14: str, items: list[tuple[Any, ...]]) -> None:
    keep, *others = (row[0] for row in items)
    forms = ", ".join(f"item {row[0]} ({row[1]})" for row in items)
    _as_actor(
        bind,
        f"one product, one item: {forms} are GTIN-14 {gtin14} with identical master data; "
        f"merged into item {keep} (migration 0021)",
    )
    bind.exec_driver_sql("UPDATE erp.lots SET item_id = %s WHERE item_id = ANY(%s)", (keep, others))
    bind.exec_driver_sql("DELETE FROM erp.items WHERE id = ANY(%s)", (others,))
    log.warning("GTIN-14 %s: %s merged into item %s", gtin14, forms, keep)


def upgrade() -> None:
    bind = op.get_bind()
    checked = [(g, *_conflicts(bind, g)) for g in _groups(bind)]
    refused = [(g, items, why) for g, items, why in checked if why]
    tags = _bad_lot_tags(bind)
    if refused or tags:
        raise CommandError(_report(refused, tags))
    for gtin14, items, _ in checked:
        _merge(bind, gtin14, items)
    _as_actor(bind, "GTIN stored in its GTIN-14 form (leading zeros; migration 0021)")
    changed = bind.exec_driver_sql(
        "UPDATE erp.items SET gtin = lpad(gtin, 14, '0') WHERE length(gtin) < 14 RETURNING id, gtin"
    ).fetchall()
    for item_id, gtin in changed:
        log.info("item %s: GTIN stored as %s", item_id, gtin)
    op.execute(CONSTRAINTS)


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE erp.lot_tags DROP CONSTRAINT lot_tags_gtin_is_gtin14;
        ALTER TABLE erp.lot_tags ADD CONSTRAINT lot_tags_gtin_check CHECK (gtin ~ '^[0-9]{14}$');
        COMMENT ON COLUMN erp.lot_tags.gtin IS NULL;
        ALTER TABLE erp.items DROP CONSTRAINT items_gtin_is_gtin14;
        ALTER TABLE erp.items ADD CONSTRAINT items_gtin_check CHECK (erp.gtin_valid(gtin));
        COMMENT ON COLUMN erp.items.gtin IS NULL;
        """
    )
