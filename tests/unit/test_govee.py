"""Govee H5075 frames from the simulator, decoded by govee-ble through bleak's objects."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.ble import SimulatedBleLogger, SimulatedGoveeLogger, encode_h5075, to_bleak
from gateway.ble.govee import COMPANY_ID
from gateway.config import BleConfig, BleLogger
from gateway.sources.ble import BleSource

ADDRESS = "A4:C1:38:00:00:75"


def source(clock: list[float]) -> BleSource:
    logger = BleLogger(address=ADDRESS, sensor="fridge-govee-1", format="govee-h5075")
    return BleSource(BleConfig(loggers=[logger], min_interval_s=10), clock=lambda: clock[0])


def test_payload_layout_by_hand() -> None:
    # 4.5 °C, 61.2 %: 45 * 1000 + 612 = 45612 = 0x00B22C; battery 88
    assert encode_h5075(temperature=4.5, humidity=61.2, battery=88) == bytes.fromhex("0000B22C5800")
    # -20.5 °C, 30.0 %: sign bit | 205300 = 0x800000 | 0x0321F4
    assert encode_h5075(temperature=-20.5, humidity=30.0, battery=50)[1:4] == bytes.fromhex(
        "8321F4"
    )


@given(
    st.floats(-40, 60).map(lambda t: round(t, 1)),
    st.floats(0, 99.9).map(lambda h: round(h, 1)),
    st.integers(0, 100),
)
def test_simulated_frames_decode_to_the_values_sent(temp: float, hum: float, batt: int) -> None:
    clock = [1_764_000_000.0]
    raw = SimulatedGoveeLogger(ADDRESS).advertise(temperature=temp, humidity=hum, battery=batt)
    device, adv = to_bleak(ADDRESS, raw)
    assert COMPANY_ID in adv.manufacturer_data
    got = {r.qty: r.value for r in source(clock).handle(device, adv)}
    assert got["temperature"] == pytest.approx(0.0 if temp == 0 else temp, abs=1e-9)
    assert got["humidity"] == pytest.approx(hum, abs=1e-9)
    assert got["battery"] == batt


def test_repeats_are_limited_per_device_by_time() -> None:
    clock = [1_764_000_000.0]
    src = source(clock)
    frame = to_bleak(ADDRESS, SimulatedGoveeLogger(ADDRESS).advertise(temperature=5, humidity=40))
    assert len(src.handle(*frame)) == 3
    clock[0] += 2
    assert src.handle(*frame) == []  # the same advertisement, 2 s later
    clock[0] += 9
    assert len(src.handle(*frame)) == 3


def test_a_bthome_logger_is_not_read_as_govee() -> None:
    clock = [1_764_000_000.0]
    raw = SimulatedBleLogger(ADDRESS).advertise(temperature=5.0)
    assert source(clock).handle(*to_bleak(ADDRESS, raw)) == []


def test_out_of_range_values_are_not_encodable() -> None:
    with pytest.raises(ValueError, match="not encodable"):
        encode_h5075(temperature=5, humidity=100.0, battery=50)
