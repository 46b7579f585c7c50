"""Local alarm logic, pure: is any watched reading beyond the limit the gateway was given.

China's GSP for medical devices (NMPA) and good practice elsewhere want an alarm *on
the spot* when a storage temperature reaches its limit, not only an e-mail from a
central server that may be unreachable. So the gateway checks the readings it polls
against limits from its own config, as they arrive (before the outbox), and drives a
relay (buzzer, beacon) from the result; nothing here needs the broker or ingest.

A reading is beyond its limit when it is strictly outside ``[low, high]``, as the
excursion rules of `coldchain` count it. The alarm is active while the newest
reading of any watched (sensor, quantity) is beyond its limit, and clears when every
one of them is back in range. A central alert may hold it on as well (`hold`,
`gateway.central_alerts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.config import LocalLimit
from gateway.health import AlarmState
from telemetry.payloads import Reading


def breach(limit: LocalLimit, value: float) -> str | None:
    """Say how ``value`` breaks ``limit`` (e.g. ``"fridge-a temperature 9.1 > 8.0"``), or None."""
    if limit.high is not None and value > limit.high:
        return f"{limit.sensor} {limit.qty} {value:g} > {limit.high:g}"
    if limit.low is not None and value < limit.low:
        return f"{limit.sensor} {limit.qty} {value:g} < {limit.low:g}"
    return None


@dataclass
class LocalAlarm:
    """One alarm: its limits, and which of them the newest readings break."""

    name: str
    limits: Sequence[LocalLimit]
    since: int | None = None  # gateway time (ms) it turned active
    _causes: dict[tuple[str, str], str] = field(default_factory=dict)
    _held: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    @property
    def active(self) -> bool:
        """Whether the alarm output should be on."""
        return bool(self._causes or self._held)

    def causes(self) -> list[str]:
        """Why the alarm is active: one line per broken limit, then per holding alert."""
        return [*sorted(self._causes.values()), *sorted(self._held.values())]

    @property
    def known(self) -> bool:
        """Whether every watched (sensor, quantity) has had a reading since the start.

        Until then "not active" means "not known to be beyond": the driver must not
        switch an output off on it (a restart would silence an alarm that is due).
        """
        watched = {(limit.sensor, limit.qty) for limit in self.limits}
        return watched <= self._seen

    def observe(self, readings: Sequence[Reading], now_ms: int) -> bool:
        """Take readings that arrived at gateway time ``now_ms``; return whether it toggled."""
        before = self.active
        for reading in readings:
            key = (reading.sensor, reading.qty)
            # every limit on the same (sensor, qty) judges the reading: one in range
            # must not clear what another one found broken
            matching = [limit for limit in self.limits if (limit.sensor, limit.qty) == key]
            if not matching:
                continue
            self._seen.add(key)
            whys = [why for limit in matching if (why := breach(limit, reading.value)) is not None]
            if whys:
                self._causes[key] = "; ".join(whys)
            else:
                self._causes.pop(key, None)
        return self._toggled(before=before, now_ms=now_ms)

    def hold(self, key: str, reason: str | None, now_ms: int) -> bool:
        """Hold the alarm on for ``key`` with ``reason``, or release ``key`` (None)."""
        before = self.active
        if reason is None:
            self._held.pop(key, None)
        else:
            self._held[key] = reason
        return self._toggled(before=before, now_ms=now_ms)

    def _toggled(self, *, before: bool, now_ms: int) -> bool:
        if self.active == before:
            return False
        self.since = now_ms if self.active else None
        return True

    def state(self, *, output_on: bool | None, error: str | None) -> AlarmState:
        """The alarm as the gateway state message reports it."""
        return AlarmState(
            name=self.name,
            active=self.active,
            since=self.since,
            causes=self.causes(),
            output_on=output_on,
            error=error,
        )
