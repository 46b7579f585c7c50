"""An inline SVG line chart of downsampled readings: mean line, min/max band, limits (pure).

Each bucket draws its min-max envelope over its whole width (a step shape: the
extremes held somewhere in that bucket) and its mean at its middle. Where readings
stop for longer than usual the line and band break, so an outage never looks like
data. The parts above or below the allowed range are drawn again in the alarm colour,
clipped to the out-of-range area, so an excursion is visible without reading numbers.
Element ids are fixed unless ``Chart.key`` is set: a page with several charts (the
shipment page, one per logger) gives each its own key so their ids differ.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from babel.dates import format_skeleton

from erp_core.web.format import current_zone, zone_name
from erp_core.web.html import Html, join, render

WIDTH = 960
HEIGHT = 380
LEFT, RIGHT, TOP, BOTTOM = 76, 24, 20, 62
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_STEPS: tuple[timedelta, ...] = tuple(
    [timedelta(seconds=s) for s in (1, 2, 5, 10, 15, 30)]
    + [timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30)]
    + [timedelta(hours=h) for h in (1, 2, 3, 6, 12)]
    + [timedelta(days=d) for d in (1, 2, 7, 14, 28)]
)
MAX_TIME_TICKS = 9


@dataclass(frozen=True, slots=True)
class ChartBucket:
    """One bucket of readings: [start, end) with its min, max and mean."""

    start: datetime
    end: datetime
    low: float
    high: float
    mean: float


@dataclass(frozen=True, slots=True)
class Chart:
    """What to draw: buckets of one sensor over [start, end), and its allowed range if any."""

    title: str
    quantity: str
    unit: str  # as printed, e.g. "°C"
    start: datetime
    end: datetime
    buckets: Sequence[ChartBucket]
    limits: tuple[float, float] | None = None
    limits_label: str = ""
    # the pre-alarm thresholds inside the limits (low + band, high - band), if any
    warn: tuple[float, float] | None = None
    # the words on the chart, in the page's language ("" for time_title: "Time (<zone>)")
    time_title: str = ""
    empty_text: str = "No readings in this period"
    # suffix of the chart's element ids; set it when a page shows more than one chart
    key: str = ""
    # the zone of the time axis (None: the site's, erp_core.web.format.current_zone)
    zone: tzinfo | None = None
    # the language of the axis dates (Babel locale)
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class _Scale:
    chart: Chart
    y_low: float
    y_high: float

    def x(self, t: datetime) -> float:
        span = (self.chart.end - self.chart.start).total_seconds()
        return LEFT + PLOT_W * (t - self.chart.start).total_seconds() / span

    def y(self, v: float) -> float:
        return TOP + PLOT_H * (self.y_high - v) / (self.y_high - self.y_low)


def render_chart(chart: Chart) -> Html:
    """The chart as an ``<svg>`` element that scales to its container's width."""
    y_low, y_high, y_ticks = _value_axis(chart)
    scale = _Scale(chart, y_low, y_high)
    segments = _segments(chart.buckets)
    parts = [
        _limits_band(scale),
        _grid(scale, y_ticks),
        join(_segment(scale, s, css="series") for s in segments),
    ]
    if chart.limits is not None:
        parts.append(_out_of_range(scale, segments))
    if not chart.buckets:
        parts.append(
            render(
                '<text class="empty" x="{x}" y="{y}" text-anchor="middle">{text}</text>',
                text=chart.empty_text,
                x=LEFT + PLOT_W / 2,
                y=TOP + PLOT_H / 2,
            )
        )
    return render(
        '<svg class="chart" viewBox="0 0 {w} {h}" role="img" '
        'aria-labelledby="chart-title{k} chart-desc{k}" xmlns="http://www.w3.org/2000/svg">'
        '<title id="chart-title{k}">{title}</title><desc id="chart-desc{k}">{desc}</desc>'
        '<rect class="plot" x="{left}" y="{top}" width="{pw}" height="{ph}"/>'
        "{body}</svg>",
        w=WIDTH,
        h=HEIGHT,
        title=chart.title,
        k=_key(chart),
        desc=_describe(chart),
        left=LEFT,
        top=TOP,
        pw=PLOT_W,
        ph=PLOT_H,
        body=join(parts),
    )


def _segments(buckets: Sequence[ChartBucket]) -> list[list[ChartBucket]]:
    """Runs of buckets drawn as one line; a gap of over twice the usual spacing splits them.

    The usual spacing (median distance between bucket starts) is one bucket for dense
    data and the sampling interval for data sparser than the buckets, so a sensor read
    every 5 minutes still draws a line in 2-minute buckets, and an outage still shows.
    """
    if len(buckets) < 2:
        return [list(buckets)] if buckets else []
    steps = [(b.start - a.start).total_seconds() for a, b in itertools.pairwise(buckets)]
    limit = 2 * statistics.median(steps)
    runs: list[list[ChartBucket]] = [[buckets[0]]]
    for step, bucket in zip(steps, buckets[1:], strict=True):
        if step > limit:
            runs.append([bucket])
        else:
            runs[-1].append(bucket)
    return runs


def _segment(scale: _Scale, run: list[ChartBucket], *, css: str) -> Html:
    upper = [(scale.x(t), scale.y(b.high)) for b in run for t in (b.start, b.end)]
    lower = [(scale.x(t), scale.y(b.low)) for b in reversed(run) for t in (b.end, b.start)]
    mean = [(scale.x(b.start + (b.end - b.start) / 2), scale.y(b.mean)) for b in run]
    band = render('<polygon class="{css}-band" points="{p}"/>', css=css, p=_points(upper + lower))
    if len(mean) == 1:
        ((x, y),) = mean
        line = render(
            '<circle class="{css}-dot" cx="{x}" cy="{y}" r="3"/>', css=css, x=_n(x), y=_n(y)
        )
    else:
        line = render('<polyline class="{css}-line" points="{p}"/>', css=css, p=_points(mean))
    return join([band, line])


def _out_of_range(scale: _Scale, runs: list[list[ChartBucket]]) -> Html:
    """The series again in the alarm colour, visible only above or below the limits."""
    limits = scale.chart.limits
    if limits is None:
        return Html("")
    low, high = limits
    y_high, y_low = scale.y(high), scale.y(low)
    clip = render(
        '<clipPath id="out-of-range{k}">'
        '<rect x="{l}" y="{t}" width="{w}" height="{h1}"/>'
        '<rect x="{l}" y="{y2}" width="{w}" height="{h2}"/>'
        "</clipPath>",
        k=_key(scale.chart),
        l=LEFT,
        t=TOP,
        w=PLOT_W,
        h1=_n(max(0.0, y_high - TOP)),
        y2=_n(y_low),
        h2=_n(max(0.0, TOP + PLOT_H - y_low)),
    )
    series = join(_segment(scale, run, css="alarm") for run in runs)
    return render(
        '{clip}<g clip-path="url(#out-of-range{k})">{series}</g>',
        clip=clip,
        series=series,
        k=_key(scale.chart),
    )


def _key(chart: Chart) -> str:
    """The suffix of the chart's element ids: empty, or ``-`` and its key."""
    return f"-{chart.key}" if chart.key else ""


def _limits_band(scale: _Scale) -> Html:
    limits = scale.chart.limits
    if limits is None:
        return Html("")
    low, high = limits
    top, bottom = scale.y(high), scale.y(low)
    return render(
        "{warn}"
        '<rect class="limits" x="{x}" y="{y}" width="{w}" height="{h}"/>'
        '<line class="limit" x1="{x}" x2="{x2}" y1="{y}" y2="{y}"/>'
        '<line class="limit" x1="{x}" x2="{x2}" y1="{y3}" y2="{y3}"/>'
        '<text class="limits-label" x="{tx}" y="{ty}">{label}</text>',
        x=LEFT,
        y=_n(top),
        w=PLOT_W,
        h=_n(bottom - top),
        x2=LEFT + PLOT_W,
        y3=_n(bottom),
        tx=LEFT + 8,
        ty=_n(top + 16),
        label=scale.chart.limits_label,
        warn=_pre_alarm_bands(scale),
    )


def _pre_alarm_bands(scale: _Scale) -> Html:
    """The strips between each limit and its pre-alarm threshold, drawn inside the band."""
    limits, warn = scale.chart.limits, scale.chart.warn
    if limits is None or warn is None:
        return Html("")
    (low, high), (warn_low, warn_high) = limits, warn
    return join(
        render(
            '<rect class="pre-alarm" x="{x}" y="{y}" width="{w}" height="{h}"/>',
            x=LEFT,
            y=_n(scale.y(upper)),
            w=PLOT_W,
            h=_n(scale.y(lower) - scale.y(upper)),
        )
        for lower, upper in ((warn_high, high), (low, warn_low))
        if upper > lower
    )


def _grid(scale: _Scale, y_ticks: list[float]) -> Html:
    chart = scale.chart
    parts = []
    decimals = _decimals(y_ticks)
    for v in y_ticks:
        y = _n(scale.y(v))
        parts.append(
            render(
                '<line class="grid" x1="{l}" x2="{r}" y1="{y}" y2="{y}"/>'
                '<text class="tick" x="{tx}" y="{y}" dy="0.35em" text-anchor="end">{label}</text>',
                l=LEFT,
                r=LEFT + PLOT_W,
                y=y,
                tx=LEFT - 8,
                label=f"{v:.{decimals}f} {chart.unit}".rstrip(),
            )
        )
    zone = chart.zone or current_zone()
    step, ticks = _time_ticks(chart.start, chart.end, zone)
    previous_day = ""
    for t in ticks:
        x = _n(scale.x(t))
        day = format_skeleton("MMMd", t, locale=chart.locale)  # Jun 1, 6月1日
        if step >= timedelta(days=1):
            first, second = day, ""
        else:
            first = t.strftime("%H:%M:%S" if step < timedelta(minutes=1) else "%H:%M")
            second = "" if day == previous_day else day
        previous_day = day
        parts.append(
            render(
                '<line class="grid" x1="{x}" x2="{x}" y1="{t}" y2="{b}"/>'
                '<text class="tick" x="{x}" y="{ty}" text-anchor="middle">{first}</text>{date}',
                x=x,
                t=TOP,
                b=TOP + PLOT_H,
                ty=TOP + PLOT_H + 18,
                first=first,
                date=render(
                    '<text class="tick date" x="{x}" y="{y}" text-anchor="middle">{d}</text>',
                    x=x,
                    y=TOP + PLOT_H + 34,
                    d=second,
                )
                if second
                else Html(""),
            )
        )
    parts.append(
        render(
            '<text class="axis-title" x="{x}" y="{y}" text-anchor="middle">{x_title}</text>'
            '<text class="axis-title" transform="translate(16 {cy}) rotate(-90)" '
            'text-anchor="middle">{y_title}</text>',
            x=LEFT + PLOT_W / 2,
            y=HEIGHT - 6,
            x_title=chart.time_title or f"Time ({zone_name(zone, at=chart.end)})",
            cy=TOP + PLOT_H / 2,
            y_title=f"{chart.quantity.capitalize()} ({chart.unit})"
            if chart.unit
            else chart.quantity,
        )
    )
    return join(parts)


def _value_axis(chart: Chart) -> tuple[float, float, list[float]]:
    """Axis bounds on round numbers covering the data and the limits, and the tick values."""
    values = [b.low for b in chart.buckets] + [b.high for b in chart.buckets]
    if chart.limits is not None:
        values.extend(chart.limits)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.05
    step = _nice_step((high - low + 2 * pad) / 6)
    first = math.floor((low - pad) / step)
    last = math.ceil((high + pad) / step)
    ticks = [i * step for i in range(first, last + 1)]
    return ticks[0], ticks[-1], ticks


def _nice_step(raw: float) -> float:
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - factor 10 always matches


def _decimals(ticks: list[float]) -> int:
    """Decimal places that print every tick of the axis exactly (2.5 -> 1, 0.25 -> 2)."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    places = 0
    while places < 6 and abs(step * 10**places - round(step * 10**places)) > 1e-6:
        places += 1
    return places


def _time_ticks(start: datetime, end: datetime, zone: tzinfo) -> tuple[timedelta, list[datetime]]:
    """A round step giving at most MAX_TIME_TICKS ticks, and the ticks on its multiples.

    Multiples of the step on the wall clock of ``zone`` (midnight there, not in UTC),
    returned as times in ``zone``.
    """
    span = end - start
    step = next(
        (s for s in _TIME_STEPS if span / s <= MAX_TIME_TICKS),
        timedelta(days=math.ceil(span / timedelta(days=MAX_TIME_TICKS))),
    )
    shift = start.astimezone(zone).utcoffset() or timedelta(0)
    epoch = EPOCH - shift  # local midnight of 1970-01-01
    first = epoch + -((epoch - start) // step) * step  # first multiple of step >= start
    ticks = []
    t = first
    while t <= end:
        ticks.append(t.astimezone(zone))
        t += step
    return step, ticks


def _describe(chart: Chart) -> str:
    if not chart.buckets:
        return "No readings in this period."
    unit = f" {chart.unit}" if chart.unit else ""
    low = min(b.low for b in chart.buckets)
    high = max(b.high for b in chart.buckets)
    return f"Lowest {low:.1f}{unit}, highest {high:.1f}{unit}."


def _points(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _n(v: float) -> str:
    return f"{v:.1f}"
