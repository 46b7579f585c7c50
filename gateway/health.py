"""Gateway health, pure: per-sensor gaps, battery, clock skew, and the state message.

A QA reviewer must be able to tell "the fridge was fine" from "we have no data":
a silent sensor is a finding, so the gateway says on its state topic which sensors
are overdue (no reading for more than ``gap_intervals`` expected intervals), which
gaps closed recently, how old the oldest reading still waiting in the outbox is, and
whether its clock disagrees with ingest's. Device timestamps are never rewritten here
(or anywhere in the gateway): skew is reported, not corrected.

`HealthMonitor` is fed the readings as they become durable and the acks as they
arrive, with times passed in, so every rule is checked with exact numbers. The state
payload is `HealthState`, a subclass of the wire's `GatewayState`: the same fields
plus extras, which readers that decode `GatewayState` ignore (docs/gateway.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec

from gateway.config import GatewayConfig
from telemetry.payloads import VERSION, GatewayState, Reading, SourceState, Status

BATTERY_QTY = "battery"
GAP_INTERVALS = 3.0  # a sensor is overdue after this many expected intervals without data
SKEW_TOLERANCE_MS = 2_000  # beyond this the gateway's clock is reported as skewed
SKEW_SAMPLES = 16  # acks kept for the skew estimate
MAX_GAPS = 50  # closed gaps kept for the state message


class SensorHealth(msgspec.Struct, frozen=True):
    """What the gateway knows about one sensor, for the state message."""

    sensor: str
    last_t: int  # device time (ms) of the newest reading
    received: int  # gateway clock (ms) when that reading was stored
    interval_ms: int | None = None  # expected interval, where configured
    overdue_ms: int | None = None  # time past the expected next reading, when overdue
    battery: float | None = None  # newest battery reading (%), where the device has one
    clock_offset_ms: int = 0  # last_t - received: device clock minus gateway clock


class Gap(msgspec.Struct, frozen=True):
    """A stretch with no reading from one sensor; ``end`` None while it lasts."""

    sensor: str
    start: int  # device time (ms) of the last reading before the gap
    end: int | None  # device time (ms) of the first reading after it
    missed: int  # expected readings missed (whole intervals)


class AlarmState(msgspec.Struct, frozen=True):
    """One local alarm output (a relay channel) as the state message reports it."""

    name: str  # the alarm's name in the config
    active: bool  # a watched reading is beyond its local limit (or a central alert is open)
    since: int | None = None  # gateway time (ms) it turned active, None while clear
    causes: list[str] = msgspec.field(default_factory=list)  # why it is active
    output_on: bool | None = None  # the coil as last written; None before the first write
    error: str | None = None  # the last failure to drive the output, cleared by a success


class HealthState(GatewayState, frozen=True):
    """`GatewayState` plus health extras; old readers ignore the extra fields."""

    committed: int | None = None  # ingest's watermark as last acked
    oldest_unconfirmed_t: int | None = None  # device time (ms) of the oldest outbox reading
    oldest_unconfirmed_age_ms: int | None = None  # gateway now minus that time
    clock_skew_ms: int | None = None  # ingest clock minus gateway clock, from acks
    clock_skewed: bool = False  # |clock_skew_ms| > the tolerance
    sensors: list[SensorHealth] = msgspec.field(default_factory=list)
    gaps: list[Gap] = msgspec.field(default_factory=list)
    alarms: list[AlarmState] = msgspec.field(default_factory=list)
    ignored_acks: int = 0  # acks for seqs never assigned (forged, or a restored outbox)
    outbox_bytes: int | None = None  # outbox file in use
    outbox_limit_bytes: int | None = None  # what it may grow to: its cap, or the disk's room
    outbox_full_since: int | None = None  # gateway time (ms) appends began to be refused
    outbox_refused: int = 0  # items refused for a full outbox since the gateway started


def missed_intervals(prev_t: int, t: int, interval_ms: int) -> int:
    """Whole expected readings missed between consecutive readings at ``prev_t`` and ``t``."""
    if interval_ms <= 0 or t <= prev_t:
        return 0
    return max(0, (t - prev_t) // interval_ms - 1)


def is_gap(prev_t: int, t: int, interval_ms: int, *, gap_intervals: float = GAP_INTERVALS) -> bool:
    """Whether the silence from ``prev_t`` to ``t`` is longer than ``gap_intervals`` intervals."""
    return interval_ms > 0 and t - prev_t > gap_intervals * interval_ms


def estimate_skew(samples: Iterable[int]) -> int | None:
    """Estimate ingest-minus-gateway clock offset from ``ack.t - receipt`` samples.

    Each sample is the true offset minus that ack's transit time, so the largest
    sample (the fastest ack) is the best estimate.
    """
    return max(samples, default=None)


def expected_intervals(cfg: GatewayConfig) -> dict[str, int]:
    """Expected ms between readings per sensor, from the polled devices' config."""
    return {d.sensor: round(d.poll_interval_s * 1000) for d in cfg.modbus}


@dataclass
class _Sensor:
    last_t: int
    received: int
    battery: float | None = None


@dataclass
class HealthMonitor:
    """Keeps per-sensor last-seen, battery and gaps, and the clock-skew estimate."""

    intervals_ms: Mapping[str, int]
    gap_intervals: float = GAP_INTERVALS
    skew_tolerance_ms: int = SKEW_TOLERANCE_MS
    _sensors: dict[str, _Sensor] = field(default_factory=dict)
    _gaps: deque[Gap] = field(default_factory=lambda: deque(maxlen=MAX_GAPS))
    _skew: deque[int] = field(default_factory=lambda: deque(maxlen=SKEW_SAMPLES))
    _refused: int = 0
    _full_since: int | None = None

    def refused(self, n: int, now_ms: int) -> bool:
        """Count ``n`` items the full outbox refused; return whether it was not full before."""
        self._refused += n
        if self._full_since is not None:
            return False
        self._full_since = now_ms
        return True

    def accepted(self) -> int | None:
        """The outbox took an append: return since when it had been full, None if it was not."""
        since, self._full_since = self._full_since, None
        return since

    @property
    def refused_total(self) -> int:
        """Items refused for a full outbox since the gateway started."""
        return self._refused

    def observe(self, readings: Sequence[Reading], now_ms: int) -> None:
        """Take readings that were just stored at gateway time ``now_ms``."""
        for r in readings:
            known = self._sensors.get(r.sensor)
            if known is None:
                self._sensors[r.sensor] = known = _Sensor(last_t=r.t, received=now_ms)
            elif r.t > known.last_t:
                interval = self.intervals_ms.get(r.sensor, 0)
                if is_gap(known.last_t, r.t, interval, gap_intervals=self.gap_intervals):
                    missed = missed_intervals(known.last_t, r.t, interval)
                    self._gaps.append(Gap(r.sensor, known.last_t, r.t, missed))
                known.last_t = r.t
                known.received = now_ms
            if r.qty == BATTERY_QTY:
                known.battery = r.value

    def ack(self, ack_t: int, now_ms: int) -> None:
        """Take a fresh (not retained) ack made at ingest time ``ack_t``, received at ``now_ms``."""
        self._skew.append(ack_t - now_ms)

    def clock_skew_ms(self) -> int | None:
        """Estimated ingest-minus-gateway clock offset, None before any fresh ack."""
        return estimate_skew(self._skew)

    def skewed(self) -> bool:
        """Whether the estimated skew is beyond the tolerance."""
        skew = self.clock_skew_ms()
        return skew is not None and abs(skew) > self.skew_tolerance_ms

    def sensors(self, now_ms: int) -> list[SensorHealth]:
        """Health of every sensor seen so far (one never seen shows in its source's status)."""
        out = []
        for name, known in sorted(self._sensors.items()):
            interval = self.intervals_ms.get(name)
            overdue = None
            if interval and is_gap(
                known.received, now_ms, interval, gap_intervals=self.gap_intervals
            ):
                overdue = now_ms - known.received - interval
            out.append(
                SensorHealth(
                    sensor=name,
                    last_t=known.last_t,
                    received=known.received,
                    interval_ms=interval,
                    overdue_ms=overdue,
                    battery=known.battery,
                    clock_offset_ms=known.last_t - known.received,
                )
            )
        return out

    def gaps(self, now_ms: int) -> list[Gap]:
        """Recent closed gaps, then the open ones (sensors overdue right now)."""
        open_gaps = [
            Gap(s.sensor, s.last_t, None, missed_intervals(s.received, now_ms, s.interval_ms or 0))
            for s in self.sensors(now_ms)
            if s.overdue_ms is not None
        ]
        return [*self._gaps, *open_gaps]

    def state(  # noqa: PLR0913 - one argument per field of the message
        self,
        *,
        gateway: str,
        status: Status,
        now_ms: int,
        outbox_depth: int,
        sources: Sequence[SourceState],
        committed: int | None,
        oldest_t: int | None,
        alarms: Sequence[AlarmState] = (),
        ignored_acks: int = 0,
        outbox_size: tuple[int, int] | None = None,
    ) -> HealthState:
        """Build the state message as of ``now_ms``."""
        return HealthState(
            v=VERSION,
            gateway=gateway,
            status=status,
            t=now_ms,
            outbox_depth=outbox_depth,
            sources=list(sources),
            committed=committed,
            oldest_unconfirmed_t=oldest_t,
            oldest_unconfirmed_age_ms=None if oldest_t is None else now_ms - oldest_t,
            clock_skew_ms=self.clock_skew_ms(),
            clock_skewed=self.skewed(),
            sensors=self.sensors(now_ms),
            gaps=self.gaps(now_ms),
            alarms=list(alarms),
            ignored_acks=ignored_acks,
            outbox_bytes=outbox_size[0] if outbox_size else None,
            outbox_limit_bytes=outbox_size[1] if outbox_size else None,
            outbox_full_since=self._full_since,
            outbox_refused=self._refused,
        )
