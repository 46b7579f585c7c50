"""A simulated BTHome v2 BLE temperature logger: real advertisement frames, no radio.

`SimulatedBleLogger.advertise` returns the raw advertising data a logger broadcasts
(flags, local name, service data 0xFCD2 with a BTHome v2 payload and an incrementing
packet id); `to_bleak` turns raw advertising data into bleak's own `BLEDevice` and
`AdvertisementData`, as the BlueZ backend would deliver them to a scanner callback.
The parsing of the raw bytes is bluetooth-data-tools', not ours.

The frames are written here from the formats' specifications, as a device's firmware
writes them; the gateway reads them with the maintained parsers (`gateway.ble`), so
each side is an independent implementation and the round-trip tests check one against
the other. BTHome v2 (service data UUID 0xFCD2): a device-information byte (0x40:
version 2, unencrypted, sent regularly) followed by objects in id order — 0x00 packet
id (uint8), 0x01 battery (uint8, %), 0x02 temperature (sint16, 0.01 °C), 0x03 humidity
(uint16, 0.01 %). Govee H5075 (manufacturer data, company id 0xEC88), 6 bytes: 0x00,
three bytes big-endian ``v`` with bit 23 the sign and ``v & 0x7FFFFF`` = temperature in
0.1 °C × 1000 + humidity in 0.1 %, one byte battery % (bit 7: error), one trailing byte.
"""

from __future__ import annotations

import struct

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bluetooth_data_tools import parse_advertisement_data_bytes

BTHOME_UUID16 = 0xFCD2
BTHOME_DEVICE_INFO_V2 = 0x40
GOVEE_COMPANY_ID = 0xEC88


def encode_bthome_v2(
    *, temperature: float, humidity: float | None = None, battery: int | None = None, packet_id: int
) -> bytes:
    """Build an unencrypted BTHome v2 service-data payload."""
    out = bytearray([BTHOME_DEVICE_INFO_V2, 0x00, packet_id & 0xFF])
    if battery is not None:
        out += bytes([0x01, battery])
    out += b"\x02" + struct.pack("<h", round(temperature * 100))
    if humidity is not None:
        out += b"\x03" + struct.pack("<H", round(humidity * 100))
    return bytes(out)


def encode_h5075(*, temperature: float, humidity: float, battery: int) -> bytes:
    """The 6-byte manufacturer-data payload of a Govee H5075 (after the company id)."""
    t10 = round(abs(temperature) * 10)
    h10 = round(humidity * 10)
    if not (0 <= h10 <= 999 and t10 * 1000 + h10 <= 0x7FFFFF and 0 <= battery <= 100):
        raise ValueError(f"not encodable: {temperature} °C, {humidity} %, battery {battery}")
    v = t10 * 1000 + h10 | (0x800000 if temperature < 0 and t10 else 0)
    return bytes([0x00]) + v.to_bytes(3, "big") + bytes([battery, 0x00])


def advertising_data(
    *, name: str, service_data: bytes | None = None, manufacturer_data: bytes | None = None
) -> bytes:
    """Raw BLE advertising data: flags, local name, then the service-data and/or manufacturer AD."""
    encoded_name = name.encode()[:20]
    out = bytes([2, 0x01, 0x06]) + bytes([len(encoded_name) + 1, 0x09]) + encoded_name
    if service_data is not None:
        uuid16 = BTHOME_UUID16.to_bytes(2, "little")
        out += bytes([len(service_data) + 3, 0x16]) + uuid16 + service_data
    if manufacturer_data is not None:
        company = GOVEE_COMPANY_ID.to_bytes(2, "little")
        out += bytes([len(manufacturer_data) + 3, 0xFF]) + company + manufacturer_data
    return out


class SimulatedBleLogger:
    """One logger with a Bluetooth address; each `advertise` is a new packet."""

    def __init__(self, address: str, *, name: str = "CT-BLE") -> None:
        self.address = address.upper()
        self.name = name
        self.packet_id = 0

    def advertise(
        self, *, temperature: float, humidity: float | None = None, battery: int | None = None
    ) -> bytes:
        """Return the raw advertising data of the next packet."""
        self.packet_id = (self.packet_id + 1) % 256
        payload = encode_bthome_v2(
            temperature=temperature, humidity=humidity, battery=battery, packet_id=self.packet_id
        )
        return advertising_data(name=self.name, service_data=payload)


class SimulatedGoveeLogger:
    """A Govee H5075: manufacturer data 0xEC88, no packet id (it repeats every frame)."""

    def __init__(self, address: str, *, name: str = "GVH5075_0001") -> None:
        self.address = address.upper()
        self.name = name

    def advertise(self, *, temperature: float, humidity: float, battery: int = 100) -> bytes:
        """Return the raw advertising data for the current values."""
        payload = encode_h5075(temperature=temperature, humidity=humidity, battery=battery)
        return advertising_data(name=self.name, manufacturer_data=payload)


def to_bleak(address: str, raw: bytes, *, rssi: int = -60) -> tuple[BLEDevice, AdvertisementData]:
    """Build what bleak hands a detection callback for raw advertising data ``raw``."""
    local_name, service_uuids, service_data, manufacturer_data, tx_power = (
        parse_advertisement_data_bytes(raw)
    )
    device = BLEDevice(address, local_name, None)
    adv = AdvertisementData(
        local_name=local_name,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=service_uuids or list(service_data),
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(),
    )
    return device, adv
