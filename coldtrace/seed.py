"""Demo data: users, a site with three fridges, a dock and a truck, one item, four lots.

After a few minutes of ``coldtrace demo`` the lot in fridge 1 has a clean history and
can be released, the lot in fridge 3 (whose compressor fails) has an excursion with a
deviation that blocks its release, and the third lot travels fridge 2 → dock → truck.
A fourth lot is on the road from the start: shipment ``SHP-DEMO-001`` left the dock for
a customer's warehouse on the truck when the demo began, so ``/shipments`` has one in
transit for the whole run.
Two QA people receive alert emails. Every record goes through the ERP services, so the
audit trail holds all of it.

Goods movements are not written here: a fixed barcode scanner at each fridge and at the
dock, and an RFID portal at the truck, are mapped to their locations, and the demo's
warehouse script (``goods_in_script``/``dispatch_script``) has the simulated devices
scan the lots' labels and read the pallet tag, so the movements arrive through the
gateway like real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import Connection

from erp_core.audit.keys import Keyring
from erp_core.audit.service import set_actor
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.lots import service as lots
from erp_core.lots.models import LotIn, LotTagIn
from erp_core.lots.tags import register_tag
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, ItemIn, LocationIn, ReaderIn
from erp_core.movements.models import MovementIn
from erp_core.movements.service import record_movement
from erp_core.shipments import service as shipments
from erp_core.shipments.models import ShipmentIn, ShipmentLotIn
from identifiers.epc import decode_epc, encode_sscc96
from identifiers.gs1 import encode_gs1
from identifiers.gtin import check_digit, to_gtin14

DEMO_PASSWORD = "ColdTrace-demo-2026!"  # noqa: S105 - demo only; printed by `coldtrace demo`
USERS = (
    ("admin", "Ada Admin", Role.ADMIN),
    ("qa", "Quentin Quality", Role.QA),
    ("qam", "Mei QA-Manager", Role.QA_MANAGER),
    ("qam2", "Lin Second-QA-Manager", Role.QA_MANAGER),  # four eyes: approves qam's override
    ("wh", "Walter Warehouse", Role.WAREHOUSE),
)
PROFILE = "nmpa-md-cold-chain-2-8"
GTIN = to_gtin14("4006381333931")  # the EAN-13 on the box, kept as GTIN-14 like every GTIN
PALLET_COMPANY, PALLET_REF = "0614141", "1234567890"  # SSCC-96 of the shipped pallet
FRIDGE_SCANNERS = ("scan-f1", "scan-f2", "scan-f3")
DOCK_SCANNER, TRUCK_PORTAL = "scan-dock", "rfid-truck"
TRANSIT_LOT = "DEMO-TRANSIT-004"  # on shipment SHP-DEMO-001, in transit all through the demo


@dataclass(frozen=True, slots=True)
class DemoLots:
    """Ids of the seeded lots, for the demo's summary."""

    clean: int
    excursion: int
    shipped: int
    fridges: tuple[int, int, int]
    dock: int
    truck: int
    numbers: tuple[str, str, str]  # clean, shipped, excursion
    expires_on: date


def _sensor(conn: Connection[Any], uid: str, gateway: str) -> int:
    """The temperature sensor ``uid`` of ``gateway`` (a device id is unique per gateway)."""
    conn.execute(
        "INSERT INTO telemetry.sensors (gateway_id, uid, quantity, unit)"
        " VALUES (%s, %s, 'temperature', 'Cel')"
        " ON CONFLICT (gateway_id, uid, quantity) DO NOTHING",
        (gateway, uid),
    )
    row = conn.execute(
        "SELECT id FROM telemetry.sensors"
        " WHERE gateway_id = %s AND uid = %s AND quantity = 'temperature'",
        (gateway, uid),
    ).fetchone()
    assert row is not None
    sensor_id = int(row[0])
    conn.execute(
        "INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id)"
        " SELECT %s, id FROM telemetry.alarm_profiles WHERE name = %s"
        " ON CONFLICT (sensor_id) DO NOTHING",
        (sensor_id, PROFILE),
    )
    return sensor_id


def seed_demo(conn: Connection[Any], *, now: datetime, gateway: str, keyring: Keyring) -> DemoLots:
    """Create the demo's master data and lots (the caller commits).

    The users' password hashes are bound with ``keyring`` (the demo's record key), like
    every password the application sets (``erp_core.auth.binding``).
    """
    set_actor(conn, user="system:demo-seed", reason="demo data")
    for username, full_name, role in USERS:
        auth_service.create_user(
            conn,
            username=username,
            full_name=full_name,
            password=DEMO_PASSWORD,
            roles=[role],
            now=now,
            keyring=keyring,
        )

    def loc(code: str, name: str, kind: str, parent: int | None) -> int:
        location = LocationIn(code=code, name=name, kind=kind, parent_id=parent)  # type: ignore[arg-type]
        return master.create_location(conn, location=location).id

    site = loc("PLANT-DEMO", "Demo plant", "site", None)
    cold = loc("COLD", "Cold store", "area", site)
    fridges = [loc(f"F{i}", f"Fridge {i}", "fridge", cold) for i in (1, 2, 3)]
    dock = loc("DOCK", "Dispatch dock", "dock", site)
    truck = loc("TRK-1", "Refrigerated truck 1", "truck", site)
    since = now - timedelta(minutes=1)
    for i, fridge in enumerate(fridges, start=1):
        sensor = _sensor(conn, f"FRIDGE-{i}", gateway)
        master.assign_sensor(
            conn, assignment=AssignmentIn(sensor_id=sensor, location_id=fridge, valid_from=since)
        )
    readers = [*zip(FRIDGE_SCANNERS, fridges, strict=True), (DOCK_SCANNER, dock)]
    for reader_id, location in readers:
        master.set_reader(
            conn, reader_id=reader_id, reader=ReaderIn(location_id=location, kind="scan")
        )
    master.set_reader(conn, reader_id=TRUCK_PORTAL, reader=ReaderIn(location_id=truck, kind="rfid"))
    profile = conn.execute(
        "SELECT id FROM telemetry.alarm_profiles WHERE name = %s", (PROFILE,)
    ).fetchone()
    item = master.create_item(
        conn,
        item=ItemIn(
            gtin=GTIN,
            name="Vascular graft 6 mm",
            range_low=2.0,
            range_high=8.0,
            alarm_profile_id=int(profile[0]) if profile else None,
            mkt_limit=8.0,
            tor_budget_minutes=30,
            shelf_life_days=730,
            implantable=True,
        ),
    )
    expiry = (now + timedelta(days=700)).date()

    def lot(number: str) -> int:
        created = lots.create_lot(
            conn,
            lot=LotIn(
                item_id=item.id,
                lot_number=number,
                expires_on=expiry,
                manufactured_on=now.date(),
                quantity=100,
            ),
            now=now,
        )
        return created.id

    for name, email in (
        ("Quentin Quality", "qa@plant-demo.example"),
        ("Mei QA-Manager", "qam@plant-demo.example"),
    ):
        conn.execute(
            "INSERT INTO telemetry.recipients (name, email, role) VALUES (%s, %s, 'qa')",
            (name, email),
        )
    conn.execute(
        "INSERT INTO telemetry.notify_routes (role, min_severity, channel) VALUES ('qa', 'warning',"
        " 'email')"
    )
    numbers = ("DEMO-CLEAN-001", "DEMO-SHIP-002", "DEMO-HOT-003")
    clean, shipped, excursion = (lot(n) for n in numbers)
    pallet = decode_sscc(encode_sscc96(PALLET_COMPANY, PALLET_REF))
    register_tag(conn, tag=LotTagIn(lot_id=shipped, sscc=pallet))
    _in_transit(conn, lot_id=lot(TRANSIT_LOT), dock=dock, truck=truck, since=since, now=now)
    return DemoLots(
        clean=clean,
        shipped=shipped,
        excursion=excursion,
        fridges=(fridges[0], fridges[1], fridges[2]),
        dock=dock,
        truck=truck,
        numbers=numbers,
        expires_on=expiry,
    )


def _in_transit(  # noqa: PLR0913 - keyword-only, one per place and time
    conn: Connection[Any], *, lot_id: int, dock: int, truck: int, since: datetime, now: datetime
) -> None:
    """The fourth lot, received at the dock, leaves on the truck for a customer at ``now``."""
    site = master.create_location(
        conn, location=LocationIn(code="CUST", name="Customer (hospital)", kind="site")
    ).id
    customer = master.create_location(
        conn,
        location=LocationIn(
            code="CUST-1", name="Customer warehouse", kind="warehouse", parent_id=site
        ),
    ).id
    record_movement(
        conn,
        movement=MovementIn(
            lot_id=lot_id,
            quantity=100,
            from_location_id=None,
            to_location_id=dock,
            moved_at=since,
            source="manual",
            reference="demo: received at the dock",
        ),
        now=now,
    )
    planned = shipments.create_shipment(
        conn,
        shipment=ShipmentIn(
            reference="SHP-DEMO-001",
            truck_location_id=truck,
            origin_location_id=dock,
            destination_location_id=customer,
            lots=[ShipmentLotIn(lot_id=lot_id, quantity=100)],
        ),
    )
    shipments.depart(conn, shipment_id=planned.id, time=now, now=now)


def first_readings_at(conn: Connection[Any], *, gateway: str) -> datetime | None:
    """When every demo fridge of ``gateway`` has a stored reading: the latest first one."""
    row = conn.execute(
        "SELECT max(first), count(*) FROM (SELECT min(r.time) AS first FROM telemetry.readings r"
        " JOIN telemetry.sensors s ON s.id = r.sensor_id"
        " WHERE s.gateway_id = %s AND s.uid IN ('FRIDGE-1', 'FRIDGE-2', 'FRIDGE-3')"
        " AND s.quantity = 'temperature' GROUP BY s.id) f",
        (gateway,),
    ).fetchone()
    return row[0] if row and row[1] == 3 else None


def _label(lots_: DemoLots, number: str) -> str:
    return encode_gs1(gtin=GTIN, lot=number, expiry=f"{lots_.expires_on:%y%m%d}")


def goods_in_script(lots_: DemoLots) -> list[dict[str, object]]:
    """Scans at fridges 1–3 that receive the three lots; one damaged label among them.

    The demo plays this once every fridge has a stored reading, so each lot's record
    starts with readings. The damaged label (wrong GTIN check digit) shows as a failed
    scan that moved nothing.
    """
    wrong = GTIN[:-1] + str((check_digit(GTIN[:-1]) + 5) % 10)
    damaged = _label(lots_, lots_.numbers[0]).replace(GTIN, wrong)
    scans: list[dict[str, object]] = [
        {"device": scanner, "scan": _label(lots_, number)}
        for scanner, number in zip(FRIDGE_SCANNERS, lots_.numbers, strict=True)
    ]
    return [*scans, {"device": FRIDGE_SCANNERS[0], "scan": damaged}]


def dispatch_script(lots_: DemoLots) -> list[dict[str, object]]:
    """The shipped lot is scanned at the dock, then its pallet tag passes the truck portal."""
    epc = encode_sscc96(PALLET_COMPANY, PALLET_REF)
    return [
        {"device": DOCK_SCANNER, "scan": _label(lots_, lots_.numbers[1])},
        {"device": TRUCK_PORTAL, "tag": epc, "antenna": 1, "for_s": 3, "after_s": 5},
    ]


def decode_sscc(epc_hex: str) -> str:
    """The SSCC an SSCC-96 EPC carries."""
    sscc = decode_epc(epc_hex).sscc
    assert sscc is not None
    return sscc
