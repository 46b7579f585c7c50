"""Gather a report from the database: the same history and evidence as the release.

One read of ``lot_history`` (the chart's buckets and the statistics over every reading)
feeds both the statistics printed and the release rules' evidence
(``release.service.evidence_from``); the report never computes a figure of its own.
Services take the caller's connection and do not commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import Connection

from erp_core.audit.keys import Keyring
from erp_core.audit.service import AuditEntry, entries_for
from erp_core.deviations import service as deviations
from erp_core.lot_history.history import lot_history
from erp_core.lot_history.models import LotHistory
from erp_core.masterdata.service import get_item, get_location
from erp_core.release import service as release
from erp_core.release.rules import Evidence, recommend
from erp_core.reports.models import (
    AuditLine,
    CustodyLine,
    DeviationLine,
    ExcursionLine,
    LotReport,
    ProductHeader,
    RuleLine,
    ShipmentHeader,
    ShipmentReport,
    SignatureLine,
)
from erp_core.shipments.service import get_shipment, shipments_of_lot

Conn = Connection[Any]

CHART_POINTS = 300
AUDIT_LINES = 40  # the newest entries; the whole trail is `coldtrace audit` / the API


def lot_report(conn: Conn, *, lot_id: int, now: datetime, keyring: Keyring) -> LotReport:
    """The lot's report as of ``now``; signatures checked with ``keyring``."""
    history = lot_history(conn, lot_id=lot_id, max_points=CHART_POINTS, now=now)
    evidence = release.evidence_from(conn, history=history, now=now)
    recommendation = recommend(evidence)
    devs = deviations.deviations_for(conn, lot_id=lot_id)
    decisions = release.decisions_for(conn, lot_id=lot_id, keyring=keyring)
    return LotReport(
        generated_at=now,
        header=_header(conn, history),
        stats=history.stats,
        buckets=history.buckets,
        notes=history.notes,
        release_recommended=recommendation.release_recommended,
        rules=[
            RuleLine(
                rule=r.rule, passed=r.passed, evidence=r.evidence, code=r.code, values=r.values
            )
            for r in recommendation.results
        ],
        excursions=_excursions(conn, history, evidence),
        deviations=[_deviation(d) for d in devs],
        custody=_custody(conn, history),
        signatures=[s for d in reversed(decisions) for s in _signatures(d)],  # oldest first
        audit=_audit(
            conn,
            lot_id=lot_id,
            deviation_ids=[int(d["id"]) for d in devs],
            decision_ids=[int(d["id"]) for d in decisions],
        ),
    )


def shipment_report(
    conn: Conn, *, shipment_id: int, now: datetime, keyring: Keyring
) -> ShipmentReport:
    """The shipment's report as of ``now``: the shipment, then each lot's own report."""
    shipment = get_shipment(conn, shipment_id=shipment_id)
    loggers = _sensor_uids(conn, shipment.logger_sensor_ids)
    return ShipmentReport(
        generated_at=now,
        shipment=ShipmentHeader(
            shipment_id=shipment.id,
            reference=shipment.reference,
            truck=_place(conn, shipment.truck_location_id),
            origin=_place(conn, shipment.origin_location_id),
            destination=_place(conn, shipment.destination_location_id),
            departed_at=shipment.departed_at,
            arrived_at=shipment.arrived_at,
            loggers=[loggers.get(i, str(i)) for i in shipment.logger_sensor_ids],
            legs=[
                CustodyLine(
                    kind="shipment",
                    what=f"{_place(conn, leg.from_location_id)} → "
                    f"{_place(conn, leg.to_location_id)}",
                    start=leg.departed_at,
                    end=leg.arrived_at,
                )
                for leg in shipment.legs
            ],
            quantities=[lot.quantity for lot in shipment.lots],
        ),
        lots=[
            lot_report(conn, lot_id=lot.lot_id, now=now, keyring=keyring) for lot in shipment.lots
        ],
    )


def _place(conn: Conn, location_id: int) -> str:
    place = get_location(conn, location_id=location_id)
    return f"{place.code} — {place.name} ({place.kind})"


def _sensor_uids(conn: Conn, ids: list[int]) -> dict[int, str]:
    rows = conn.execute(
        "SELECT id, uid FROM telemetry.sensors WHERE id = ANY(%s)", (sorted(set(ids)),)
    ).fetchall()
    return {int(i): str(uid) for i, uid in rows}


def _header(conn: Conn, history: LotHistory) -> ProductHeader:
    lot = history.lot
    item = get_item(conn, item_id=lot.item_id)
    return ProductHeader(
        lot_id=lot.id,
        lot_number=lot.lot_number,
        gtin=lot.gtin,
        product=item.name,
        expires_on=lot.expires_on,
        manufactured_on=lot.manufactured_on,
        quantity=lot.quantity,
        status=str(lot.status),
        range_low=item.range_low,
        range_high=item.range_high,
        mkt_limit=item.mkt_limit,
        tor_budget_minutes=item.tor_budget_minutes,
    )


def _excursions(conn: Conn, history: LotHistory, evidence: Evidence) -> list[ExcursionLine]:
    """Every episode of the lot's history; the dispositions the release rules saw."""
    dispositions = {x.id: x.disposition for x in evidence.excursions}
    uids = _sensor_uids(conn, [x.sensor_id for x in history.excursions])
    return [
        ExcursionLine(
            id=x.id,
            sensor=str(uids.get(x.sensor_id, x.sensor_id)),
            kind=x.kind,
            level=x.level,
            start=x.start,
            end=x.end,
            peak=x.peak,
            late=x.late,
            disposition=dispositions.get(x.id),
        )
        for x in history.excursions
    ]


def _deviation(d: dict[str, Any]) -> DeviationLine:
    return DeviationLine(
        number=d["number"],
        title=d["title"],
        status=d["status"],
        disposition=d["disposition"],
        capa_ref=d["capa_ref"],
        opened_at=d["opened_at"],
        opened_by=d["opened_by"],
        closed_at=d["closed_at"],
        closed_by=d["closed_by"],
        closing_comment=d["closing_comment"],
    )


def _custody(conn: Conn, history: LotHistory) -> list[CustodyLine]:
    """The lot's location intervals and its shipments, in time order."""
    lines = [
        CustodyLine(
            kind="location",
            what=_place(conn, interval.location_id),
            start=interval.start,
            end=interval.end,
        )
        for interval in history.intervals
    ]
    for shipment in shipments_of_lot(conn, lot_id=history.lot.id):
        origin = get_location(conn, location_id=shipment.origin_location_id)
        destination = get_location(conn, location_id=shipment.destination_location_id)
        lines.append(
            CustodyLine(
                kind="shipment",
                what=f"{shipment.reference}: {origin.code} → {destination.code}",
                start=shipment.departed_at,
                end=shipment.arrived_at,
            )
        )
    return sorted(lines, key=lambda c: (c.start is None, c.start or history.lot.status_changed_at))


def _signatures(d: dict[str, Any]) -> list[SignatureLine]:
    """A decision's signatures: an approved override's proposal first, then the decision."""
    lines = []
    proposal = d["override"]
    if proposal is not None:
        lines.append(
            SignatureLine(
                action="release",
                verdict="override",
                printed_name=proposal["signed_by"] or "",
                username=proposal["signed_by_username"] or "",
                signed_at=proposal["signed_at"],
                meaning=proposal["meaning"] or "",
                justification=None,  # the same as the approval's, printed once below it
                verified=proposal["signature_verified"],
                problems=list(proposal["signature_problems"]),
            )
        )
    return [*lines, _signature(d)]


def _signature(d: dict[str, Any]) -> SignatureLine:
    return SignatureLine(
        action=d["action"],
        verdict=d["verdict"],
        printed_name=d["signed_by"] or "",
        username=d["signed_by_username"] or "",
        signed_at=d["signed_at"],
        meaning=d["meaning"] or "",
        justification=d["justification"],
        verified=d["signature_verified"],
        problems=list(d["signature_problems"]),
    )


def _audit(
    conn: Conn, *, lot_id: int, deviation_ids: list[int], decision_ids: list[int]
) -> list[AuditLine]:
    """The newest audit entries of the lot row, its deviations and its decisions."""
    keys = [("erp.lots", lot_id)]
    keys += [("erp.deviations", i) for i in deviation_ids]
    keys += [("erp.release_decisions", i) for i in decision_ids]
    entries: list[AuditEntry] = []
    for table, key in keys:
        entries += entries_for(conn, table=table, key={"id": key}, limit=AUDIT_LINES)
    entries.sort(key=lambda e: e.seq, reverse=True)
    return [
        AuditLine(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            table=e.table_name,
            action=e.action,
            fields=_changed(e),
            reason=e.reason,
            hash=e.hash,
        )
        for e in entries[:AUDIT_LINES]
    ]


def _changed(e: AuditEntry) -> list[str]:
    """The fields an entry changed (every field of an insert or delete)."""
    old, new = e.old_values or {}, e.new_values or {}
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
