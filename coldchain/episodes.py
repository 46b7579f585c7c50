"""Excursion episodes: runs of readings outside a profile's allowed range, from stored data.

Pure: a sensor's readings (device times in ms, values) and a profile in, episodes out.
Evaluation is driven by the stored data, never by arrival order: re-evaluating a
window that starts at an in-range reading (or the first reading) and ends at an
in-range reading (or the last one) yields exactly the episodes of the whole series in
that window, so a late or re-sent batch only needs its own window re-evaluated
(``affected_window``) and the result reconciled with what is stored (``reconcile``).

Rules (see docs/alerts.md):
- an episode is a maximal run of consecutive readings above ``high`` (kind high) or
  below ``low`` (kind low); limits themselves are in range;
- it starts at its first reading and ends at the first reading after it that is not on
  the same side (``end``); with no such reading it is open (``end`` is None);
- a value holds until the next reading (step), so duration = end - start (open: last
  reading - start), and the area beyond the limit is Σ excess·(t_next - t) in °C·min;
- the alarm delay is reached when duration >= alarm_delay_s; an absolute-limit breach
  alarms at once; either makes the episode an alarm, otherwise it is a pre-alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from coldchain.errors import ReadingsError
from coldchain.profiles import AlarmProfile

Kind = Literal["high", "low"]
Level = Literal["pre_alarm", "alarm"]
MS_PER_MIN = 60_000


@dataclass(frozen=True, slots=True)
class Episode:
    """One excursion of one sensor; times are device times in ms since the epoch."""

    kind: Kind
    start: int
    end: int | None
    last: int
    peak: float
    area: float
    readings: int
    delay_reached: bool
    abs_breach: bool
    late: bool = False

    @property
    def duration_ms(self) -> int:
        """Time out of range: end - start when closed, last reading - start when open."""
        return (self.end if self.end is not None else self.last) - self.start

    @property
    def level(self) -> Level:
        """``alarm`` once the delay is reached or an absolute limit is breached."""
        return "alarm" if self.delay_reached or self.abs_breach else "pre_alarm"

    @property
    def is_open(self) -> bool:
        """Whether the sensor has not been seen back in range yet."""
        return self.end is None


def _arrays(
    times: Sequence[int] | npt.NDArray[np.int64], values: Sequence[float] | npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    t = np.asarray(times, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 1:
        raise ReadingsError(f"times and values differ in shape: {t.shape} vs {v.shape}")
    if t.size > 1 and not bool(np.all(np.diff(t) > 0)):
        raise ReadingsError("times must be strictly increasing (one reading per sensor and time)")
    return t, v


def sides(values: npt.NDArray[np.float64], profile: AlarmProfile) -> npt.NDArray[np.int8]:
    """Per reading: +1 above ``high``, -1 below ``low``, 0 in range (vectorised)."""
    out = np.zeros(values.shape, dtype=np.int8)
    out[values > profile.high] = 1
    out[values < profile.low] = -1
    return out


def detect(
    times: Sequence[int] | npt.NDArray[np.int64],
    values: Sequence[float] | npt.NDArray[np.float64],
    profile: AlarmProfile,
    *,
    late: Sequence[bool] | npt.NDArray[np.bool_] | None = None,
) -> list[Episode]:
    """The excursion episodes of one sensor's readings (sorted by time), oldest first."""
    t, v = _arrays(times, values)
    if t.size == 0:
        return []
    late_arr = np.zeros(t.shape, dtype=bool) if late is None else np.asarray(late, dtype=bool)
    side = sides(v, profile)
    # run boundaries: indices where the side changes
    cuts = np.flatnonzero(np.diff(side)) + 1
    starts = np.concatenate(([0], cuts))
    stops = np.concatenate((cuts, [t.size]))
    delay_ms = profile.alarm_delay_s * 1000
    episodes: list[Episode] = []
    for i, j in zip(starts.tolist(), stops.tolist(), strict=True):
        s = int(side[i])
        if s == 0:
            continue
        kind: Kind = "high" if s > 0 else "low"
        run = v[i:j]
        end = int(t[j]) if j < t.size else None
        nxt = t[i + 1 : j + 1] if end is not None else np.append(t[i + 1 : j], t[j - 1])
        steps = (nxt - t[i:j]).astype(np.float64)
        if kind == "high":
            peak = float(run.max())
            excess = run - profile.high
            breach = profile.abs_high is not None and peak > profile.abs_high
        else:
            peak = float(run.min())
            excess = profile.low - run
            breach = profile.abs_low is not None and peak < profile.abs_low
        duration = (end if end is not None else int(t[j - 1])) - int(t[i])
        episodes.append(
            Episode(
                kind=kind,
                start=int(t[i]),
                end=end,
                last=int(t[j - 1]),
                peak=peak,
                area=float(np.sum(excess * steps)) / MS_PER_MIN,
                readings=j - i,
                delay_reached=duration >= delay_ms,
                abs_breach=bool(breach),
                late=bool(late_arr[i:j].any()),
            )
        )
    return episodes


def time_out_of_range_ms(
    times: Sequence[int] | npt.NDArray[np.int64],
    values: Sequence[float] | npt.NDArray[np.float64],
    profile: AlarmProfile,
    *,
    start: int | None = None,
    end: int | None = None,
) -> int:
    """Cumulative time out of range in [start, end), each value held until the next reading."""
    t, v = _arrays(times, values)
    if t.size < 2:
        return 0
    lo = t[0] if start is None else start
    hi = t[-1] if end is None else end
    seg_start = np.clip(t[:-1], lo, hi)
    seg_end = np.clip(t[1:], lo, hi)
    out = sides(v, profile)[:-1] != 0
    return int(np.sum((seg_end - seg_start)[out]))


def budget_exceeded(episode: Episode, cumulative_ms: int, profile: AlarmProfile) -> list[str]:
    """Which time-out-of-range budgets of ``profile`` are used up (empty if none)."""
    out = []
    single = profile.single_event_budget_s
    if single is not None and episode.duration_ms > single * 1000:
        out.append(f"single excursion longer than {single / 60:g} min")
    total = profile.cumulative_budget_s
    if total is not None and cumulative_ms > total * 1000:
        out.append(f"cumulative time out of range above {total / 3600:g} h")
    return out


def affected_window(
    times: Sequence[int] | npt.NDArray[np.int64],
    values: Sequence[float] | npt.NDArray[np.float64],
    profile: AlarmProfile,
    *,
    min_t: int,
    max_t: int,
) -> tuple[int | None, int | None]:
    """The window to re-read after readings in [min_t, max_t] arrived (None = unbounded).

    From the last in-range reading before ``min_t`` to the first in-range reading after
    ``max_t``: episodes outside it are delimited by in-range readings and cannot change.
    The evaluator runs the same query in SQL; this is its reference definition.
    """
    t, v = _arrays(times, values)
    inside = sides(v, profile) == 0
    before = np.flatnonzero(inside & (t < min_t))
    after = np.flatnonzero(inside & (t > max_t))
    lo = int(t[before[-1]]) if before.size else None
    hi = int(t[after[0]]) if after.size else None
    return lo, hi


@dataclass(frozen=True, slots=True)
class StoredEpisode:
    """The identity of an episode already stored: its id, kind and interval."""

    id: int
    kind: Kind
    start: int
    end: int | None


class Run(Protocol):
    """Anything with a side and an interval: an excursion episode or a pre-alarm run."""

    @property
    def kind(self) -> Kind:
        """``high`` or ``low``."""

    @property
    def start(self) -> int:
        """First reading's time."""

    @property
    def end(self) -> int | None:
        """First reading after the run (None: open)."""


R = TypeVar("R", bound=Run)


@dataclass(frozen=True, slots=True)
class Reconciliation(Generic[R]):
    """What to write: each fresh run with the stored id it continues (None = new)."""

    upserts: list[tuple[int | None, R]]
    superseded: dict[int, int | None]  # stored id -> the id it merged into (None: gone)


def _overlaps(a_start: int, a_end: int | None, b_start: int, b_end: int | None) -> bool:
    inf = np.iinfo(np.int64).max
    return max(a_start, b_start) < min(
        inf if a_end is None else a_end, inf if b_end is None else b_end
    ) or (a_start == b_start)


def reconcile(stored: Sequence[StoredEpisode], fresh: Sequence[R]) -> Reconciliation[R]:
    """Match freshly computed episodes to stored ones by kind and overlap, keeping ids stable.

    A fresh episode continues the earliest stored episode of its kind that overlaps it;
    other stored episodes it overlaps were merged into it (late data filled a gap);
    stored episodes that no fresh one overlaps are gone.
    """
    used: set[int] = set()
    upserts: list[tuple[int | None, R]] = []
    superseded: dict[int, int | None] = {}
    ordered = sorted(stored, key=lambda s: (s.start, s.id))
    for ep in sorted(fresh, key=lambda e: e.start):
        hits = [
            s
            for s in ordered
            if s.id not in used
            and s.kind == ep.kind
            and _overlaps(s.start, s.end, ep.start, ep.end)
        ]
        keep = hits[0].id if hits else None
        for s in hits:
            used.add(s.id)
            if s.id != keep:
                superseded[s.id] = keep
        upserts.append((keep, ep))
    for s in ordered:
        if s.id not in used:
            superseded[s.id] = None
    return Reconciliation(upserts=upserts, superseded=superseded)


def with_late(episode: Episode, *, late: bool) -> Episode:
    """A copy of ``episode`` whose late flag is also set when ``late`` (never cleared)."""
    return replace(episode, late=episode.late or late)


# --- pre-alarms ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreAlarm:
    """A run of readings beyond a pre-alarm threshold (``warn_high``/``warn_low``).

    The run is an episode of the profile narrowed by ``pre_alarm_band`` (so it includes
    out-of-range readings). It warns (``raised``) once it has lasted
    ``pre_alarm_delay_s`` before any alarm inside it; an alarm inside it ends the
    pre-alarm at ``alarm_at`` (the alarm takes over), otherwise it ends with the run.
    """

    kind: Kind
    start: int
    end: int | None  # first reading back inside the inner band (None: run still open)
    last: int
    peak: float  # of the readings before ``ended_at``
    readings: int
    late: bool
    raised: bool
    alarm_at: int | None  # when an alarm inside the run took over

    @property
    def ended_at(self) -> int | None:
        """When the pre-alarm ended: the alarm taking over, else the end of the run."""
        return self.alarm_at if self.alarm_at is not None else self.end


def warning_profile(profile: AlarmProfile) -> AlarmProfile:
    """``profile`` narrowed to its pre-alarm thresholds, with the pre-alarm delay."""
    return replace(
        profile,
        name=f"{profile.name} (pre-alarm)",
        low=profile.warn_low,
        high=profile.warn_high,
        alarm_delay_s=profile.pre_alarm_delay_s,
        abs_low=None,
        abs_high=None,
        pre_alarm_band=0.0,
    )


def alarm_time(
    episode: Episode,
    times: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    profile: AlarmProfile,
) -> int | None:
    """When ``episode`` became an alarm: its delay reached or its first absolute breach."""
    candidates = []
    if episode.delay_reached:
        candidates.append(episode.start + int(profile.alarm_delay_s * 1000))
    limit = profile.abs_high if episode.kind == "high" else profile.abs_low
    if limit is not None:
        inside = (times >= episode.start) & (times <= episode.last)
        beyond = values > limit if episode.kind == "high" else values < limit
        hits = times[inside & beyond]
        if hits.size:
            candidates.append(int(hits[0]))
    return min(candidates) if candidates else None


def pre_alarms(
    times: Sequence[int] | npt.NDArray[np.int64],
    values: Sequence[float] | npt.NDArray[np.float64],
    profile: AlarmProfile,
    *,
    late: Sequence[bool] | npt.NDArray[np.bool_] | None = None,
) -> list[PreAlarm]:
    """The pre-alarm runs of one sensor's readings, oldest first (none without a band)."""
    if profile.pre_alarm_band <= 0:
        return []
    t, v = _arrays(times, values)
    late_arr = np.zeros(t.shape, dtype=bool) if late is None else np.asarray(late, dtype=bool)
    alarms = [e for e in detect(t, v, profile) if e.level == "alarm"]
    delay_ms = int(profile.pre_alarm_delay_s * 1000)
    out = []
    for run in detect(t, v, warning_profile(profile), late=late_arr):
        at = [
            a
            for e in alarms
            if run.start <= e.start and (run.end is None or e.start < run.end)
            for a in [alarm_time(e, t, v, profile)]
            if a is not None
        ]
        alarm_at = min(at) if at else None
        raised = run.delay_reached and (alarm_at is None or run.start + delay_ms < alarm_at)
        stop = max(alarm_at, run.start + 1) if alarm_at is not None else run.last + 1
        members = (t >= run.start) & (t < stop)
        run_values = v[members]
        peak = float(run_values.max() if run.kind == "high" else run_values.min())
        out.append(
            PreAlarm(
                kind=run.kind,
                start=run.start,
                end=run.end,
                last=run.last,
                peak=peak,
                readings=run.readings,
                late=bool(late_arr[members].any()),
                raised=raised,
                alarm_at=alarm_at,
            )
        )
    return out
