"""A simulated BTHome v2 BLE temperature logger: real advertisement frames, no radio.

`SimulatedBleLogger.advertise` returns the raw advertising data a logger broadcasts
(flags, local name, service data 0xFCD2 with a BTHome v2 payload and an incrementing
packet id); `to_bleak` turns raw advertising data into bleak's own `BLEDevice` and
`AdvertisementData`, as the BlueZ backend would deliver them to a scanner callback.
The parsing of the raw bytes is bluetooth-data-tools', not ours.
"""

from __future__ import annotations

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bluetooth_data_tools import parse_advertisement_data_bytes

from telemetry import govee
from telemetry.bthome import advertising_data, encode_v2


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
        payload = encode_v2(
            temperature=temperature, humidity=humidity, battery=battery, packet_id=self.packet_id
        )
        return advertising_data(payload, name=self.name)


class SimulatedGoveeLogger:
    """A Govee H5075: manufacturer data 0xEC88, no packet id (it repeats every frame)."""

    def __init__(self, address: str, *, name: str = "GVH5075_0001") -> None:
        self.address = address.upper()
        self.name = name

    def advertise(self, *, temperature: float, humidity: float, battery: int = 100) -> bytes:
        """Return the raw advertising data for the current values."""
        payload = govee.encode_h5075(temperature=temperature, humidity=humidity, battery=battery)
        return govee.advertising_data(payload, name=self.name)


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
