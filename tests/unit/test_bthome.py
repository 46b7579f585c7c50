"""BTHome v2 frames from the simulator, through bleak's own objects, into readings."""

from __future__ import annotations

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.ble import SimulatedBleLogger, encode_bthome_v2, to_bleak
from gateway.ble.bthome import BTHOME_UUID
from gateway.config import BleConfig, BleLogger
from gateway.sources.ble import BleSource

ADDRESS = "A4:C1:38:00:00:01"
T0 = 1_764_000_000.0


def source() -> BleSource:
    cfg = BleConfig(loggers=[BleLogger(address=ADDRESS.lower(), sensor="fridge-ble-1")])
    return BleSource(cfg, clock=lambda: T0)


def test_encoder_matches_the_bthome_specification_examples() -> None:
    # bthome.io v2 format: 0x02 CA09 = 25.06 °C, 0x03 BF13 = 50.55 %, 0x01 61 = 97 %
    frame = encode_bthome_v2(temperature=25.06, humidity=50.55, battery=97, packet_id=5)
    assert frame == bytes.fromhex("400005016102CA0903BF13")


def test_simulated_advertisement_decodes_to_readings() -> None:
    logger = SimulatedBleLogger(ADDRESS)
    raw = logger.advertise(temperature=4.37, humidity=61.2, battery=88)
    device, adv = to_bleak(ADDRESS, raw)
    assert BTHOME_UUID in adv.service_data  # the frame really carries service data 0xFCD2
    readings = source().handle(device, adv)
    got = {r.qty: (r.value, r.unit) for r in readings}
    assert got == {
        "temperature": (pytest.approx(4.37), "Cel"),
        "humidity": (pytest.approx(61.2), "%"),
        "battery": (88.0, "%"),
    }
    assert {r.sensor for r in readings} == {"fridge-ble-1"}
    assert {r.t for r in readings} == {int(T0 * 1000)}


def test_repeated_packet_is_dropped_and_the_next_one_kept() -> None:
    src = source()
    logger = SimulatedBleLogger(ADDRESS)
    raw = logger.advertise(temperature=5.0)
    assert src.handle(*to_bleak(ADDRESS, raw))
    assert src.handle(*to_bleak(ADDRESS, raw)) == []  # same packet id, sent again
    assert src.handle(*to_bleak(ADDRESS, logger.advertise(temperature=5.1)))


def test_foreign_and_non_bthome_advertisers_are_ignored() -> None:
    src = source()
    logger = SimulatedBleLogger("11:22:33:44:55:66")
    assert src.handle(*to_bleak("11:22:33:44:55:66", logger.advertise(temperature=5.0))) == []
    device = BLEDevice(ADDRESS, "x", None)
    adv = AdvertisementData("x", {0x004C: b"\x02\x15"}, {}, [], None, -70, ())
    assert src.handle(device, adv) == []
    assert src.status().last_seen is None


@given(
    temperature=st.integers(-4000, 6000).map(lambda c: c / 100),
    humidity=st.integers(0, 10000).map(lambda c: c / 100),
    battery=st.integers(0, 100),
)
def test_round_trip_through_bthome_ble(temperature: float, humidity: float, battery: int) -> None:
    logger = SimulatedBleLogger(ADDRESS)
    raw = logger.advertise(temperature=temperature, humidity=humidity, battery=battery)
    got = {r.qty: r.value for r in source().handle(*to_bleak(ADDRESS, raw))}
    assert got["temperature"] == pytest.approx(temperature, abs=1e-9)
    assert got["humidity"] == pytest.approx(humidity, abs=1e-9)
    assert got["battery"] == battery
