"""Who may do what with every object of the ``telemetry`` and ``erp`` schemas — declared once.

This is the one list of the database's privileges: ``coldtrace db upgrade`` revokes
everything from the application and reader roles (and PUBLIC) and grants exactly what is
written here, after every migration (``db.privileges``). Anything not listed is
denied. A test fails when the database holds a table, view, sequence or function that is
not listed here (or a listed one that is gone), so a new migration cannot forget its
objects; its message spells out the line to add.

Each entry also names the package that owns the object (it alone changes its rows;
others read its views and functions) — the "one owner per table" record of
docs/schema.md. Privileges of the *owner role* are not declared: it owns everything.

Protected records — no UPDATE or DELETE for the application, whatever a service wants:
the audit trail and its head, signatures, readings, release decisions, stock movements
and the security logs (login attempts, web sessions). They change only through
SECURITY DEFINER functions of the owner (``erp.audit_append`` through the audit
triggers, ``erp.retention_run``), which keep their own record of the change.
"""

from __future__ import annotations

from dataclasses import dataclass

Privileges = frozenset[str]

NONE: Privileges = frozenset()
READ: Privileges = frozenset({"SELECT"})
APPEND: Privileges = READ | {"INSERT"}
WRITE: Privileges = APPEND | {"UPDATE"}
FULL: Privileges = WRITE | {"DELETE"}
EXECUTE: Privileges = frozenset({"EXECUTE"})
SEQUENCE_USE: Privileges = frozenset({"USAGE", "SELECT"})

SCHEMAS = ("telemetry", "erp")


@dataclass(frozen=True, slots=True)
class Grant:
    """What the application and reader roles may do with one object, and who owns it."""

    owner: str  # the package that owns the object (docs/schema.md)
    app: Privileges = NONE
    reader: Privileges = NONE
    why: str = ""
    optional: bool = False  # exists only in some set-ups (e.g. without btree_gist)


# Tables and views: privileges among SELECT, INSERT, UPDATE, DELETE (never TRUNCATE,
# REFERENCES or TRIGGER for anyone but the owner).
TABLES: dict[str, Grant] = {
    # --- telemetry: written by ingest (db migrations 0001-0003, 0006, 0009) ---
    "telemetry.gateways": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.sensors": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.readings": Grant(
        "ingest",
        app=APPEND,
        reader=READ,
        why="immutable: no UPDATE; DELETE only by erp.retention_run, audited",
    ),
    "telemetry.dead_letters": Grant(
        "ingest",
        app=FULL,
        reader=READ,
        why="rejected input, not a record: a repeat updates its count; purged after retention",
    ),
    "telemetry.gateway_streams": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.seq_ranges": Grant("ingest", app=FULL),
    "telemetry.tag_reads": Grant("ingest", app=APPEND, reader=READ),
    "telemetry.scans": Grant("ingest", app=APPEND, reader=READ),
    "telemetry.alarm_profiles": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.sensor_profiles": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.sensor_effective_profiles": Grant(
        "ingest",
        app=READ,
        reader=READ,
        why="view (0022): a sensor's own profile, else its quantity's default; read it",
    ),
    "telemetry.eval_pending": Grant("ingest", app=FULL),
    "telemetry.excursion_episodes": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.rolling_checks": Grant("ingest", app=WRITE, reader=READ),
    "telemetry.alerts": Grant(
        "ingest",
        app=WRITE,
        reader=READ,
        why="the evaluator's figures; status, ack and close only by the 0023 functions (trigger)",
    ),
    "telemetry.alert_events": Grant(
        "ingest",
        app=READ | {"UPDATE"},
        reader=READ,
        why="appended only by the 0023 functions; UPDATE for the notifier's FOR UPDATE",
    ),
    # The notifier's tables hold people's addresses: not for the reader role.
    "telemetry.recipients": Grant("ingest.notify", app=WRITE),
    "telemetry.notify_routes": Grant("ingest.notify", app=WRITE),
    "telemetry.notify_deliveries": Grant("ingest.notify", app=WRITE),
    "telemetry.notify_attempts": Grant("ingest.notify", app=WRITE),
    "telemetry.notify_routed": Grant("ingest.notify", app=APPEND),
    "telemetry.notify_problems": Grant("ingest.notify", app=READ),
    "telemetry.notify_failures_hourly": Grant(
        "ingest.notify",
        app=READ,
        reader=READ,
        why="view (0026): failed deliveries per hour and channel, no addresses (Grafana)",
    ),
    # --- erp: access, audit, signatures (0004, 0011) ---
    "erp.audit_log": Grant(
        "erp_core.audit",
        app=READ,
        reader=READ,
        why="appended only by erp.audit_append (SECURITY DEFINER) from the audit triggers",
    ),
    "erp.audit_head": Grant("erp_core.audit", app=READ, reader=READ, why="moved by audit_append"),
    "erp.signatures": Grant(
        "erp_core.signatures", app=APPEND, reader=READ, why="append-only, HMAC-bound"
    ),
    "erp.users": Grant(
        "erp_core.auth", app=WRITE, why="never deleted; password hashes bound to the record key"
    ),
    "erp.users_unbound_at_upgrade": Grant(
        "erp_core.auth", app=READ, why="hashes present at 0019: the only ones bind-passwords binds"
    ),
    "erp.password_resets": Grant(
        "erp_core.auth", app=WRITE, why="two-person resets of signing accounts; never deleted"
    ),
    "erp.user_roles": Grant("erp_core.auth", app=FULL, why="changes are audited"),
    "erp.login_attempts": Grant("erp_core.auth", app=APPEND, why="security log"),
    "erp.login_checks": Grant(
        "erp_core.auth", app=FULL, why="password checks in progress; rows live for seconds"
    ),
    "erp.web_sessions": Grant("erp_core.auth", app=APPEND, why="security log"),
    "erp.web_session_ends": Grant("erp_core.auth", app=APPEND, why="security log"),
    # --- erp: master data, lots, movements, shipments, lot history, edge events (0005-0014) ---
    "erp.items": Grant("erp_core.masterdata", app=WRITE, reader=READ),
    "erp.locations": Grant("erp_core.masterdata", app=WRITE, reader=READ),
    "erp.lot_status_transitions": Grant("erp_core.lots", app=READ, reader=READ),
    "erp.lots": Grant("erp_core.lots", app=WRITE, reader=READ),
    "erp.sensor_assignments": Grant("erp_core.masterdata", app=WRITE, reader=READ),
    "erp.reader_locations": Grant("erp_core.masterdata", app=WRITE, reader=READ),
    "erp.stock_movements": Grant(
        "erp_core.movements", app=APPEND, reader=READ, why="custody record: corrected by new rows"
    ),
    "erp.shipments": Grant("erp_core.shipments", app=WRITE, reader=READ),
    "erp.shipment_lots": Grant("erp_core.shipments", app=WRITE, reader=READ),
    "erp.shipment_loggers": Grant("erp_core.shipments", app=WRITE, reader=READ),
    "erp.shipment_legs": Grant("erp_core.shipments", app=WRITE, reader=READ),
    "erp.lot_tags": Grant("erp_core.lots", app=WRITE, reader=READ),
    "erp.reading_hours": Grant("erp_core.lot_history", app=FULL, reader=READ, why="derived rollup"),
    "erp.reading_days": Grant("erp_core.lot_history", app=FULL, reader=READ, why="derived rollup"),
    "erp.reading_hours_state": Grant("erp_core.lot_history", app=WRITE),
    "erp.lot_figures": Grant(
        "erp_core.lot_history",
        app=FULL,
        reader=READ,
        why="derived: each lot's release figures, recomputed by erp-jobs (0031); Grafana reads",
    ),
    "erp.edge_event_queue": Grant("erp_core.edge_events", app=FULL),
    "erp.edge_event_outcomes": Grant("erp_core.edge_events", app=WRITE, reader=READ),
    # --- erp: release and deviations (0007) ---
    "erp.inspections": Grant("erp_core.release", app=WRITE, reader=READ),
    "erp.deviations": Grant("erp_core.deviations", app=WRITE, reader=READ),
    "erp.release_decisions": Grant(
        "erp_core.release", app=APPEND, reader=READ, why="signed QA decisions: append-only"
    ),
    "erp.release_overrides": Grant(
        "erp_core.release",
        app=APPEND,
        reader=READ,
        why="signed override proposals (0029): append-only, approved by a second qa_manager",
    ),
    "erp.retention_policy": Grant("erp_core.release", app=WRITE, reader=READ),
    "erp.protected_ranges": Grant("erp_core.release", app=READ, reader=READ),
    "erp.lots_expiry": Grant("erp_core.release", app=READ, reader=READ),
    "erp.alert_lots": Grant(
        "erp_core.lot_history",
        app=READ,
        reader=READ,
        why="view (0028): the lots exposed during each alert; the notifier names them",
    ),
    "erp.boms": Grant(
        "erp_core.production",
        app=WRITE,
        reader=READ,
        why="BOM versions (0030): effective only through a signed approval",
    ),
    "erp.bom_lines": Grant(
        "erp_core.production",
        app=FULL,
        reader=READ,
        why="a draft BOM's lines; frozen by trigger once the version is approved",
    ),
    "erp.work_orders": Grant("erp_core.production", app=WRITE, reader=READ),
    "erp.material_issues": Grant(
        "erp_core.production",
        app=APPEND,
        reader=READ,
        why="component lots consumed by work orders: append-only",
    ),
    "erp.genealogy_edges": Grant(
        "erp_core.production",
        app=READ,
        reader=READ,
        why="view (0030): component lot → finished lot through a work order",
    ),
}

# Sequences other than those of identity columns (which need no privilege of their own:
# INSERT on the table is enough). None today.
SEQUENCES: dict[str, Grant] = {}

# Functions, by their signature as PostgreSQL prints it (``oid::regprocedure``). Trigger
# functions need no EXECUTE: a trigger fires whoever writes. EXECUTE is revoked from
# PUBLIC on every function here, including those, so nobody calls them directly.
TIMESTAMPTZ = "timestamp with time zone"
TABLE_TRIGGER = "a trigger function"
FUNCTIONS: dict[str, Grant] = {
    "erp.lot_genealogy(bigint,text)": Grant(
        "erp_core.production",
        app=EXECUTE,
        reader=EXECUTE,
        why="the genealogy, backward or forward, any depth (0030): API, pages, recall",
    ),
    "erp.bom_lines_frozen()": Grant("erp_core.production", why=TABLE_TRIGGER),
    "erp.work_orders_effective_bom()": Grant("erp_core.production", why=TABLE_TRIGGER),
    # telemetry
    "telemetry.commit_seq_ranges(text,text,bigint[],bigint[])": Grant("ingest", app=EXECUTE),
    "telemetry.notify_alert_event()": Grant("ingest.notify", why=TABLE_TRIGGER),
    f"telemetry.alert_append_event(bigint,text,{TIMESTAMPTZ},text,jsonb)": Grant(
        "ingest",
        app=EXECUTE,
        why="SECURITY DEFINER: the one writer of opened/updated/escalated events",
    ),
    f"telemetry.alert_acknowledge(bigint,text,text,{TIMESTAMPTZ})": Grant(
        "ingest", app=EXECUTE, why="SECURITY DEFINER: open → acknowledged and its event (ERP)"
    ),
    f"telemetry.alert_close(bigint,text,text,text,{TIMESTAMPTZ})": Grant(
        "ingest", app=EXECUTE, why="SECURITY DEFINER: acknowledged → closed and its event (ERP)"
    ),
    "telemetry.alerts_lifecycle_guard()": Grant("ingest", why=TABLE_TRIGGER),
    # audit trail: only the owner's triggers append; nobody calls these directly
    "erp.audit_field(text)": Grant("erp_core.audit", why="part of erp.audit_hash"),
    "erp.audit_hash(bigint,timestamp with time zone,text,text,jsonb,jsonb,jsonb,text,text,text)": (
        Grant("erp_core.audit", why="chain hash, entries before 0018")
    ),
    (
        "erp.audit_hash(bigint,timestamp with time zone,text,text,jsonb,jsonb,jsonb,"
        "text,text,text,text)"
    ): Grant("erp_core.audit", why="chain hash with the database role"),
    "erp.audit_append(text,text,jsonb,jsonb,jsonb,text,text)": Grant(
        "erp_core.audit", why="SECURITY DEFINER; called by erp.audit_row and retention"
    ),
    "erp.audit_row()": Grant("erp_core.audit", why=TABLE_TRIGGER),
    "erp.audit_table(regclass,text[],text[])": Grant("erp_core.audit", why="migrations only"),
    "erp.forbid()": Grant("erp_core.audit", why=TABLE_TRIGGER),
    "erp.readings_guard()": Grant("erp_core.audit", why=TABLE_TRIGGER),
    "erp.signatures_keyed()": Grant("erp_core.signatures", why=TABLE_TRIGGER),
    "erp.check_separation_of_duties()": Grant("erp_core.auth", why=TABLE_TRIGGER),
    "erp.users_password_serial()": Grant("erp_core.auth", why=TABLE_TRIGGER),
    "erp.password_resets_check()": Grant("erp_core.auth", why=TABLE_TRIGGER),
    # master data, lots, movements, lot history, edge events
    "erp.gtin_valid(text)": Grant("erp_core.masterdata", app=EXECUTE, reader=EXECUTE),
    "erp.lots_check_status()": Grant("erp_core.lots", why=TABLE_TRIGGER),
    "erp.locations_check_parent()": Grant("erp_core.masterdata", why=TABLE_TRIGGER),
    "erp.refuse_retired()": Grant("erp_core.masterdata", why=TABLE_TRIGGER),
    "erp.sensor_assignments_no_overlap()": Grant(
        "erp_core.masterdata", why=TABLE_TRIGGER + " (without btree_gist)", optional=True
    ),
    "erp.queue_scans()": Grant("erp_core.edge_events", why=TABLE_TRIGGER),
    "erp.queue_tag_reads()": Grant("erp_core.edge_events", why=TABLE_TRIGGER),
    "erp.requeue_edge_event(text,bigint)": Grant(
        "erp_core.edge_events", app=EXECUTE, why="SECURITY DEFINER: a retry and its audit entry"
    ),
    "erp.lot_intervals(bigint)": Grant("erp_core.movements", app=EXECUTE, reader=EXECUTE),
    f"erp.lot_segments(bigint,{TIMESTAMPTZ},{TIMESTAMPTZ})": Grant(
        "erp_core.lot_history", app=EXECUTE, reader=EXECUTE
    ),
    f"erp.lot_readings(bigint,{TIMESTAMPTZ},{TIMESTAMPTZ},interval)": Grant(
        "erp_core.lot_history",
        app=EXECUTE,
        reader=EXECUTE,
        why="a lot's readings with the held value at arrival (0022): API, release, Grafana",
    ),
    f"erp.lot_lead_ins(bigint,{TIMESTAMPTZ},{TIMESTAMPTZ},interval)": Grant(
        "erp_core.lot_history",
        app=EXECUTE,
        reader=EXECUTE,
        why="the held values at arrival alone (part of erp.lot_readings)",
    ),
    f"erp.sensor_lots(integer,{TIMESTAMPTZ},{TIMESTAMPTZ})": Grant(
        "erp_core.lot_history",
        app=EXECUTE,
        reader=EXECUTE,
        why="the lots a sensor stood for in a window (0028): deviations, alert e-mails",
    ),
    f"erp.refresh_reading_hours(integer,{TIMESTAMPTZ},{TIMESTAMPTZ})": Grant(
        "erp_core.lot_history", app=EXECUTE
    ),
    f"erp.refresh_reading_days(integer,{TIMESTAMPTZ},{TIMESTAMPTZ})": Grant(
        "erp_core.lot_history", app=EXECUTE
    ),
    # deviations, release, retention, expiry
    "erp.open_deviations_for_episode()": Grant("erp_core.deviations", why=TABLE_TRIGGER),
    "erp.lots_require_decision()": Grant("erp_core.release", why=TABLE_TRIGGER),
    "erp.release_overrides_check()": Grant("erp_core.release", why=TABLE_TRIGGER),
    "erp.release_decisions_four_eyes()": Grant(
        "erp_core.release", why=TABLE_TRIGGER + ": an override needs two different qa_managers"
    ),
    "erp.lot_retained_until(bigint)": Grant("erp_core.release", app=EXECUTE, reader=EXECUTE),
    f"erp.lock_expired_lots({TIMESTAMPTZ})": Grant("erp_core.release", app=EXECUTE),
    f"erp.retention_run({TIMESTAMPTZ},text)": Grant(
        "erp_core.release", app=EXECUTE, why="SECURITY DEFINER: the audited deletion of readings"
    ),
    f"erp.retention_delete({TIMESTAMPTZ},text,{TIMESTAMPTZ})": Grant(
        "erp_core.release", why="SECURITY DEFINER; with a chosen 'now': owner only"
    ),
    "erp.retention_job(integer,jsonb)": Grant(
        "erp_core.release",
        why="procedure (0025): scheduled retention through erp.retention_delete; owner only",
    ),
    "telemetry.set_compress_after(interval)": Grant(
        "ingest", why="TimescaleDB only (0025): the age of compressed readings", optional=True
    ),
}


def suggestion(kind: str, name: str) -> str:
    """The line to add to this module for an undeclared object (in a test's message)."""
    table = {"table": "TABLES", "view": "TABLES", "sequence": "SEQUENCES"}.get(kind, "FUNCTIONS")
    privilege = "EXECUTE" if table == "FUNCTIONS" else "READ"
    return (
        f'{table}: "{name}": Grant("<owning package>", app=<NONE|{privilege}|...>, '
        f"reader=<NONE|{privilege}>),"
    )


def _privilege_text(privileges: Privileges) -> str:
    for name, value in (("read", READ), ("append", APPEND), ("write", WRITE), ("full", FULL)):
        if privileges == value:
            return name
    return ", ".join(sorted(privileges)).lower() or "—"


def markdown() -> str:
    """The declaration as the tables of docs/schema.md (``python -m db.grants``)."""
    out = [
        "| table or view | owner package | app | reader | note |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| `{name}` | {g.owner} | {_privilege_text(g.app)} | {_privilege_text(g.reader)} "
        f"| {g.why} |"
        for name, g in sorted(TABLES.items())
    ]
    out += [
        "",
        "| function | owner package | app | reader | note |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| `{name}` | {g.owner} | {_privilege_text(g.app)} | {_privilege_text(g.reader)} "
        f"| {g.why}{' (optional)' if g.optional else ''} |"
        for name, g in sorted(FUNCTIONS.items())
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")  # noqa: T201 - the generator of docs/schema.md's tables
