"""BLE source: passive scan for BTHome v2 and Govee H5075 loggers; advertisements → readings.

Only `BleSource.run` touches the adapter (bleak's `BleakScanner` with a detection
callback); everything else — which advertiser is ours, decoding via the pure
`gateway.ble`, dropping repeated packet ids — happens in `BleSource.handle`,
which takes bleak's own `BLEDevice` and `AdvertisementData` and is tested without
a radio. Advertisements carry no timestamp: the reading time is the gateway clock.
"""

from __future__ import annotations

import asyncio
import logging

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from habluetooth import BluetoothServiceInfoBleak

from gateway.ble import bthome, govee
from gateway.config import BleConfig
from gateway.errors import SourceError
from gateway.flow import Backoff
from gateway.sources.base import Clock, Health, Sink, millis
from telemetry.payloads import Reading, SourceState

log = logging.getLogger(__name__)

DECODERS = {"bthome": bthome.decode, "govee-h5075": govee.decode}


class BleSource:
    """Scans for the configured BTHome loggers and delivers their readings."""

    def __init__(self, cfg: BleConfig, *, clock: Clock) -> None:
        self._cfg = cfg
        self._clock = clock
        self._health = Health(cfg.name)
        self._loggers = {logger.address.upper(): logger for logger in cfg.loggers}
        self._last_packet: dict[str, int | None] = {}
        self._last_time: dict[str, float] = {}

    @property
    def name(self) -> str:
        """The BLE source name from the config."""
        return self._cfg.name

    def status(self) -> SourceState:
        """Last advertisement from one of our loggers, and the last error."""
        return self._health.snapshot()

    def handle(self, device: BLEDevice, adv: AdvertisementData) -> list[Reading]:
        """Return the readings of one advertisement (none if foreign, undecodable or a repeat)."""
        address = device.address.upper()
        logger = self._loggers.get(address)
        if logger is None:
            return []
        info = BluetoothServiceInfoBleak.from_device_and_advertisement_data(
            device,
            adv,
            self._cfg.adapter or "local",
            self._clock(),
            False,  # noqa: FBT003 - not connectable
        )
        frame = DECODERS[logger.format](info)
        if frame is None:
            return []
        if bthome.is_repeat(self._last_packet.get(address), frame.packet_id):
            return []
        now = self._clock()
        if frame.packet_id is None and now - self._last_time.get(address, -1e18) < (
            self._cfg.min_interval_s
        ):
            return []
        self._last_packet[address] = frame.packet_id
        self._last_time[address] = now
        t_ms = millis(self._clock)
        self._health.succeeded(t_ms)
        return [
            Reading(t=t_ms, sensor=logger.sensor, qty=qty, value=value, unit=unit)
            for qty, (value, unit) in sorted(frame.values.items())
        ]

    async def run(self, sink: Sink) -> None:
        """Scan forever; restart the scanner with backoff when the adapter fails."""
        backoff = Backoff(initial=2.0, cap=60.0)

        def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
            readings = self.handle(device, adv)
            if readings:
                sink(readings)

        while True:
            try:
                scanner = BleakScanner(on_advertisement, adapter=self._cfg.adapter)
                async with scanner:
                    backoff.reset()
                    await asyncio.Event().wait()  # until cancelled
            except (BleakError, OSError) as err:
                error = SourceError(self.name, f"BLE adapter: {err}")
                self._health.failed(error.reason)
                delay = backoff.next_delay()
                log.warning("%s; restarting the scan in %.1f s", error, delay)
                await asyncio.sleep(delay)
