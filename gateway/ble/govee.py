"""Govee H5072/H5075 thermo-hygrometer advertisements (manufacturer data 0xEC88).

A second common BLE logger format next to BTHome. Decoding is done by govee-ble, the
maintained parser Home Assistant uses; this module maps its result to our quantities.
The frame carries no packet id, so the caller limits the rate per device instead. The
simulator's encoder (with the layout) is `firmware_sim.ble.encode_h5075`. No I/O.
"""

from __future__ import annotations

import math

from govee_ble import GoveeBluetoothDeviceData
from habluetooth import BluetoothServiceInfoBleak

from gateway.ble.bthome import BthomeFrame

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
