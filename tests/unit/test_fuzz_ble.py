"""Fuzzing BLE advertisements: BTHome v2 and Govee H5075 (gateway/ble/).

Contract: ``decode(service_info) -> BthomeFrame | None`` never raises. An advertisement
that is not an unencrypted frame of the format, or that the device flags as an error,
is None; a frame carries only finite values of the wire's quantities in their UCUM
units. ``BleSource.handle(device, adv)`` (what bleak's detection callback runs) never
raises and returns readings the wire contract accepts.

Input as the radio delivers it: any service data under the BTHome UUID, any
manufacturer data under Govee's company id, wrapped by bleak's own objects; and raw
advertising data, parsed by bluetooth-data-tools as the BlueZ backend would.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from habluetooth import BluetoothServiceInfoBleak
from hypothesis import example, given
from hypothesis import strategies as st

from firmware_sim.ble import encode_bthome_v2, encode_h5075, to_bleak
from gateway.ble import bthome, govee
from gateway.config import BleConfig, BleLogger
from gateway.sources.ble import BleSource
from telemetry.payloads import UNITS, Reading
from tests.fuzz_support import assert_scales_linearly, fuzz_settings

ADDRESS = "A4:C1:38:00:00:01"
T0 = 1_764_000_000.0


@pytest.fixture(autouse=True)
def _quiet_parsers() -> Iterator[None]:
    # bthome-ble and govee-ble log a warning for every malformed frame
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _adv(
    service_data: dict[str, bytes], manufacturer_data: dict[int, bytes]
) -> tuple[BLEDevice, AdvertisementData]:
    device = BLEDevice(ADDRESS, None, None)
    adv = AdvertisementData(
        local_name=None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=list(service_data),
        tx_power=None,
        rssi=-60,
        platform_data=(),
    )
    return device, adv


def _info(device: BLEDevice, adv: AdvertisementData) -> BluetoothServiceInfoBleak:
    return BluetoothServiceInfoBleak.from_device_and_advertisement_data(
        device,
        adv,
        "local",
        T0,
        False,
    )


def _source(fmt: str) -> BleSource:
    logger = BleLogger(address=ADDRESS, sensor="fridge-ble-1", format=fmt)  # type: ignore[arg-type]
    return BleSource(BleConfig(loggers=[logger], min_interval_s=0), clock=lambda: T0)


def _frame_ok(frame: bthome.BthomeFrame | None) -> None:
    if frame is None:
        return
    for qty, (value, unit) in frame.values.items():
        assert math.isfinite(value)
        assert unit in UNITS[qty]


def _readings_ok(readings: list[Reading]) -> None:
    for reading in readings:
        assert math.isfinite(reading.value)
        assert reading.unit in UNITS[reading.qty]


BTHOME_PAYLOADS = st.one_of(
    st.binary(max_size=40),
    st.binary(max_size=30).map(lambda b: b"\x40" + b),  # v2, unencrypted: objects follow
    st.binary(max_size=30).map(lambda b: b"\x41" + b),  # v2, encrypted (no key here)
    st.lists(
        st.sampled_from(
            [b"\x00", b"\x01", b"\x02", b"\x03", b"\x45", b"\x2e", b"\x53", b"\x54"]
        ).flatmap(lambda obj: st.binary(max_size=4).map(lambda v: obj + v)),
        max_size=8,
    ).map(lambda objs: b"\x40" + b"".join(objs)),
)


@fuzz_settings()
@given(BTHOME_PAYLOADS)
@example(b"")  # bthome-ble raised IndexError on empty service data
def test_any_bthome_service_data_is_a_frame_or_none(payload: bytes) -> None:
    device, adv = _adv({bthome.BTHOME_UUID: payload}, {})
    _frame_ok(bthome.decode(_info(device, adv)))
    _readings_ok(_source("bthome").handle(device, adv))


@fuzz_settings()
@given(st.binary(max_size=24))
@example(b"")
@example(b"\x00\xff\xff\xff\xff\x00")  # every bit set: error flag, temperature out of range
def test_any_govee_manufacturer_data_is_a_frame_or_none(payload: bytes) -> None:
    device, adv = _adv({}, {govee.COMPANY_ID: payload})
    _frame_ok(govee.decode(_info(device, adv)))
    _readings_ok(_source("govee-h5075").handle(device, adv))


@fuzz_settings()
@given(st.binary(max_size=62))
def test_any_raw_advertising_data_never_breaks_the_source(raw: bytes) -> None:
    try:
        device, adv = to_bleak(ADDRESS, raw)
    except Exception:
        return
    _readings_ok(_source("bthome").handle(device, adv))
    _readings_ok(_source("govee-h5075").handle(device, adv))


def test_a_long_frame_takes_linear_time() -> None:
    def decode(n: int) -> None:
        payload = b"\x40" + b"\x02\xca\x09" * n
        _frame_ok(bthome.decode(_info(*_adv({bthome.BTHOME_UUID: payload}, {}))))

    assert_scales_linearly(decode, 200)


# --- (b) round trips ---


@fuzz_settings()
@given(
    temperature=st.integers(-32768, 32767).map(lambda c: c / 100),
    humidity=st.integers(0, 10000).map(lambda c: c / 100) | st.none(),
    battery=st.integers(0, 100) | st.none(),
    packet_id=st.integers(0, 255),
)
def test_bthome_frames_built_per_the_spec_decode_to_their_values(
    temperature: float, humidity: float | None, battery: int | None, packet_id: int
) -> None:
    payload = encode_bthome_v2(
        temperature=temperature, humidity=humidity, battery=battery, packet_id=packet_id
    )
    frame = bthome.decode(_info(*_adv({bthome.BTHOME_UUID: payload}, {})))
    assert frame is not None
    assert frame.packet_id == packet_id
    assert frame.values["temperature"] == (pytest.approx(temperature), "Cel")
    if humidity is not None:
        assert frame.values["humidity"] == (pytest.approx(humidity), "%")
    if battery is not None:
        assert frame.values["battery"] == (battery, "%")


@fuzz_settings()
@given(
    tenths=st.integers(-400, 1000),  # the H5075 reads -40..100 °C
    humidity=st.integers(0, 999),
    battery=st.integers(0, 100),
)
def test_govee_frames_built_per_the_layout_decode_to_their_values(
    tenths: int, humidity: int, battery: int
) -> None:
    payload = encode_h5075(temperature=tenths / 10, humidity=humidity / 10, battery=battery)
    frame = govee.decode(_info(*_adv({}, {govee.COMPANY_ID: payload})))
    assert frame is not None
    assert frame.values["temperature"] == (pytest.approx(tenths / 10), "Cel")
    assert frame.values["humidity"] == (pytest.approx(humidity / 10), "%")


# --- (c) known answers ---


def test_the_bthome_v2_format_page_example_advertisement() -> None:
    # bthome.io/format: "020106 0B094449592D73656E736F72 0A16D2FC4002C40903BF13" = flags,
    # local name "DIY-sensor", service data 0xFCD2: v2 unencrypted, temperature 0xC409 =
    # 25.00 °C, humidity 0xBF13 = 50.55 %
    raw = bytes.fromhex("020106" + "0B094449592D73656E736F72" + "0A16D2FC4002C40903BF13")
    readings = _source("bthome").handle(*to_bleak(ADDRESS, raw))
    got = {r.qty: (r.value, r.unit) for r in readings}
    assert got == {
        "temperature": (pytest.approx(25.00), "Cel"),
        "humidity": (pytest.approx(50.55), "%"),
    }


@pytest.mark.parametrize(
    ("objects", "qty", "value"),
    [
        # bthome.io/format, sensor data table: object id, example bytes, result
        ("02CA09", "temperature", 25.06),  # sint16, factor 0.01
        ("451101", "temperature", 27.3),  # sint16, factor 0.1
        ("57EA", "temperature", -22.0),  # sint8, factor 1
        ("58EA", "temperature", -7.7),  # sint8, factor 0.35
        ("03BF13", "humidity", 50.55),  # uint16, factor 0.01
        ("2E23", "humidity", 35.0),  # uint8, factor 1
        ("0161", "battery", 97.0),  # uint8, %
    ],
)
def test_bthome_v2_object_examples(objects: str, qty: str, value: float) -> None:
    payload = bytes.fromhex("40" + objects)
    frame = bthome.decode(_info(*_adv({bthome.BTHOME_UUID: payload}, {})))
    assert frame is not None
    assert frame.values[qty][0] == pytest.approx(value)


@pytest.mark.parametrize(
    ("payload", "temperature", "humidity", "battery"),
    [
        # govee-ble tests/test_parser.py GVH5075_SERVICE_INFO (with its iBeacon tail)
        ("000341c264004c00" + "0215" + b"INTELLI_ROCKS_HW".hex() + "5075f2ff0c", 21.3, 44.2, 100),
        # govee-ble GVH5075_SERVICE_INFO_2 (GVH5075_DBF8); the same sensor in an ESP32
        # monitor's log: "GVH5075_DBF8 … T=21.6 H=49.8 bat=100"
        ("00034db26400", 21.6, 49.8, 100),
    ],
)
def test_govee_h5075_examples(
    payload: str, temperature: float, humidity: float, battery: int
) -> None:
    frame = govee.decode(_info(*_adv({}, {govee.COMPANY_ID: bytes.fromhex(payload)})))
    assert frame is not None
    assert frame.values["temperature"][0] == pytest.approx(temperature)
    assert frame.values["humidity"][0] == pytest.approx(humidity)
    assert frame.values["battery"][0] == battery
