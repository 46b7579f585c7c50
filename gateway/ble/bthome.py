"""BTHome v2 advertisements (BLE service data UUID 0xFCD2) to temperature/humidity/battery.

Decoding is done by bthome-ble, the maintained parser Home Assistant uses; this module
only maps its result to our quantities and UCUM units, and keeps the packet id so the
caller can drop repeats (a logger sends each packet many times). The simulator's
encoder is `firmware_sim.ble.encode_bthome_v2`. No I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bthome_ble import BTHomeBluetoothDeviceData
from habluetooth import BluetoothServiceInfoBleak

BTHOME_UUID = "0000fcd2-0000-1000-8000-00805f9b34fb"

# bthome-ble key -> (our quantity, UCUM unit)
QUANTITIES: dict[str, tuple[str, str]] = {
    "temperature": ("temperature", "Cel"),
    "humidity": ("humidity", "%"),
    "battery": ("battery", "%"),
}


@dataclass(frozen=True, slots=True)
class BthomeFrame:
    """The measurements of one advertisement, with its packet id if it carried one."""

    packet_id: int | None
    values: dict[str, tuple[float, str]]  # quantity -> (value, unit)


def decode(service_info: BluetoothServiceInfoBleak) -> BthomeFrame | None:
    """Decode one advertisement; None if it is not an unencrypted BTHome frame."""
    if not service_info.service_data.get(BTHOME_UUID):
        return None  # absent, or empty (which bthome-ble fails on with IndexError)
    parser = BTHomeBluetoothDeviceData()  # fresh: repeats are judged by the caller
    update = parser.update(service_info)
    values: dict[str, tuple[float, str]] = {}
    packet_id: int | None = None
    for key, sensor in update.entity_values.items():
        value = sensor.native_value
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if key.key == "packet_id":
            packet_id = int(value)
        elif key.key in QUANTITIES and math.isfinite(value):
            qty, unit = QUANTITIES[key.key]
            values[qty] = (float(value), unit)
    if not values and packet_id is None:
        return None
    return BthomeFrame(packet_id, values)


def is_repeat(previous: int | None, packet_id: int | None) -> bool:
    """Whether a frame with ``packet_id`` repeats the last one seen from the same device."""
    return packet_id is not None and previous is not None and packet_id == previous
