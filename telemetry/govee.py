"""Govee H5072/H5075 thermo-hygrometer advertisements (manufacturer data 0xEC88).

A second common BLE logger format next to BTHome. Decoding is done by govee-ble, the
maintained parser Home Assistant uses; this module maps its result to our quantities
and writes the frames the simulator advertises. The frame carries no packet id, so the
caller limits the rate per device instead. Layout (6 bytes after the company id):
0x00, three bytes big-endian ``v`` with bit 23 the sign and ``v & 0x7FFFFF`` =
temperature in 0.1 °C × 1000 + humidity in 0.1 %, one byte battery % (bit 7: error),
one trailing byte. No I/O.
"""

from __future__ import annotations

import math

from govee_ble import GoveeBluetoothDeviceData
from habluetooth import BluetoothServiceInfoBleak

from telemetry.bthome import BthomeFrame

COMPANY_ID = 0xEC88
# govee-ble key -> (our quantity, UCUM unit)
QUANTITIES: dict[str, tuple[str, str]] = {
    "temperature": ("temperature", "Cel"),
    "humidity": ("humidity", "%"),
    "battery": ("battery", "%"),
}


def decode(service_info: BluetoothServiceInfoBleak) -> BthomeFrame | None:
    """Decode one advertisement; None if it is not a valid H5072/H5075 frame."""
    if COMPANY_ID not in service_info.manufacturer_data:
        return None
    update = GoveeBluetoothDeviceData().update(service_info)
    values: dict[str, tuple[float, str]] = {}
    for key, sensor in update.entity_values.items():
        value = sensor.native_value
        if key.key not in QUANTITIES or isinstance(value, bool):
            continue
        if not isinstance(value, int | float) or not math.isfinite(value):
            return None  # the device flagged an error: no reading rather than a wrong one
        qty, unit = QUANTITIES[key.key]
        values[qty] = (float(value), unit)
    return BthomeFrame(None, values) if "temperature" in values else None


def encode_h5075(*, temperature: float, humidity: float, battery: int) -> bytes:
    """The 6-byte manufacturer-data payload of an H5075 (after the company id)."""
    t10 = round(abs(temperature) * 10)
    h10 = round(humidity * 10)
    if not (0 <= h10 <= 999 and t10 * 1000 + h10 <= 0x7FFFFF and 0 <= battery <= 100):
        raise ValueError(f"not encodable: {temperature} °C, {humidity} %, battery {battery}")
    v = t10 * 1000 + h10 | (0x800000 if temperature < 0 and t10 else 0)
    return bytes([0x00]) + v.to_bytes(3, "big") + bytes([battery, 0x00])


def advertising_data(payload: bytes, *, name: str) -> bytes:
    """Wrap a payload into raw BLE advertising data (flags, name, manufacturer data AD)."""
    encoded_name = name.encode()[:20]
    flags = bytes([2, 0x01, 0x06])
    local_name = bytes([len(encoded_name) + 1, 0x09]) + encoded_name
    company = COMPANY_ID.to_bytes(2, "little")
    manufacturer = bytes([len(payload) + 3, 0xFF]) + company + payload
    return flags + local_name + manufacturer
