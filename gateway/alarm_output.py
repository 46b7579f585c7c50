"""Local alarm output: switches one relay channel (write single coil, function 05) on an alarm.

The gateway feeds every reading a source delivers to `AlarmOutputDriver.observe`; the pure
`gateway.alarm.LocalAlarm` decides whether a local limit is broken, and this driver
writes the relay module's coil through the shared Modbus link of its bus. None of it
touches MQTT, so the alarm sounds while the broker or the network is down.

The coil is written when the alarm changes and again every ``refresh_s`` (a module
that lost power comes back with its relays off). A failed write is retried with
backoff and shows in the driver's status (it is a `Source`, so the state topic lists
it with the devices) and in the alarm state. After a start the coil is left as it is
until the alarm is known: switched on as soon as a reading breaks a limit (or a
central alert holds it), switched off only once every watched sensor has delivered
a reading in range. On stop the output keeps its last state: an alarm stays audible
rather than silenced by a restart, also when a watched sensor does not answer after
it. With ``central_alerts`` the output is also held on by open central alerts on its
watched sensors (`gateway.central_alerts`), which the publisher receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ModbusException

from gateway.alarm import LocalAlarm
from gateway.central_alerts import AlertEvent, hold_reason
from gateway.config import AlarmOutput
from gateway.flow import Backoff
from gateway.health import AlarmState
from gateway.sources.base import Clock, Health, Sink, millis
from gateway.sources.modbus import DeviceRefused, ModbusLink
from telemetry.modbus_profiles import RelayProfile
from telemetry.payloads import Reading, SourceState

log = logging.getLogger(__name__)

RETRY_MIN_S = 1.0


async def write_coil(client: ModbusBaseClient, coil: int, *, on: bool, device_id: int) -> None:
    """Write one coil (function 05: 0xFF00 on, 0x0000 off); raise on an exception response."""
    response = await client.write_coil(coil, value=on, device_id=device_id)
    if response.isError():
        raise DeviceRefused(f"relay module answered with an exception response: {response}")


class AlarmOutputDriver:
    """Keeps one relay channel in step with one `LocalAlarm`."""

    def __init__(
        self,
        cfg: AlarmOutput,
        profile: RelayProfile,
        *,
        link: ModbusLink,
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._cfg = cfg
        self._coil = profile.channels[cfg.channel]
        self._link = link
        self._clock = clock
        self._on_change = on_change
        self.alarm = LocalAlarm(cfg.name, cfg.limits)
        self._watched = {limit.sensor for limit in cfg.limits}
        self._health = Health(cfg.name)
        self._written: bool | None = None
        self._wake = asyncio.Event()

    @property
    def name(self) -> str:
        """The alarm's name from the config."""
        return self._cfg.name

    def status(self) -> SourceState:
        """Health of the relay module link: last good write and last error."""
        return self._health.snapshot()

    def alarm_state(self) -> AlarmState:
        """The alarm and its output, for the state message."""
        return self.alarm.state(output_on=self._written, error=self._health.error)

    def observe(self, readings: Sequence[Reading]) -> None:
        """Check readings just delivered against the local limits; wake the writer on a change."""
        known = self.alarm.known
        self._changed(self.alarm.observe(readings, millis(self._clock)))
        if not known and self.alarm.known:
            self._wake.set()  # the first write may go now (see `run`)

    def central(self, event: AlertEvent) -> None:
        """Take a central alert event: an open alert on a watched sensor holds the output on."""
        if not self._cfg.central_alerts or event.sensor not in self._watched:
            return
        key = f"alert {event.alert_id}"
        self._changed(self.alarm.hold(key, hold_reason(event), millis(self._clock)))

    def _changed(self, toggled: bool) -> None:  # noqa: FBT001 - the alarm's answer
        if not toggled:
            return
        if self.alarm.active:
            log.warning("alarm %s ON: %s", self.name, "; ".join(self.alarm.causes()))
        else:
            log.warning("alarm %s cleared", self.name)
        self._wake.set()
        self._on_change()

    async def _write(self, *, on: bool) -> None:
        cfg, coil = self._cfg, self._coil
        await self._link.call(
            cfg, lambda client: write_coil(client, coil, on=on, device_id=cfg.address)
        )

    async def run(self, sink: Sink) -> None:  # noqa: ARG002 - a Source that produces no readings
        """Write the coil on every change and every ``refresh_s``; retry failed writes."""
        cfg = self._cfg
        backoff = Backoff(initial=RETRY_MIN_S, cap=max(RETRY_MIN_S, cfg.refresh_s))
        while True:
            self._wake.clear()
            wanted = self.alarm.active
            delay = cfg.refresh_s
            if not wanted and not self.alarm.known:
                # after a start nothing says the alarm is clear yet (a watched sensor has
                # not answered): keep the coil as it is, which may be on from before
                await self._wake.wait()
                continue
            try:
                await self._write(on=wanted)
            except (ModbusException, OSError, TimeoutError) as err:
                reason = f"{cfg.link_label} coil {self._coil}: {str(err) or type(err).__name__}"
                self._health.failed(reason)
                delay = backoff.next_delay()
                log.warning("alarm output %s: %s; retrying in %.1f s", self.name, reason, delay)
                if self._health.failures == 1:
                    self._on_change()  # a relay that cannot be switched is news at once
            else:
                changed = wanted != self._written
                self._written = wanted
                self._health.succeeded(millis(self._clock))
                backoff.reset()
                if changed:
                    self._on_change()
            # a change during the write has set _wake again: then this returns at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
