"""HTML bodies of the monitoring pages, built from service models (pure, no I/O).

Written for a night-shift worker glancing at a wall screen: a banner that says in
words whether anything needs attention, then tables; every colour comes with a word.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coldchain.profiles import AlarmProfile
from erp_core.monitoring.models import (
    DeadLetter,
    DeadLetterCounts,
    GatewaySummary,
    ReadingSeries,
    SensorSummary,
)
from erp_core.monitoring.status import (
    ASSUMED_TEMPERATURE_RANGE_C,
    Level,
    Verdict,
    freshness_verdict,
    gateway_verdict,
    value_verdict,
)
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import (
    format_age,
    format_range,
    format_span,
    format_time,
    format_value,
)
from erp_core.web.html import Html, join, render
from telemetry.units import display_unit

LOW_C, HIGH_C = ASSUMED_TEMPERATURE_RANGE_C
LIMITS_FOOTNOTE = (
    f"Temperature limits of {format_range(LOW_C, HIGH_C, 'Cel')} are assumed for every "
    "temperature sensor until storage profiles are set up."
)
RANGE_CHOICES_HOURS = (1, 6, 24, 72, 168)
DEAD_LETTER_LIMITS = (100, 500, 1000)
_SEVERITY = {Level.ALARM: 3, Level.WARNING: 2, Level.NEUTRAL: 1, Level.OK: 0}


def badge(verdict: Verdict) -> Html:
    """A status word on its level's colour."""
    if not verdict.word:
        return Html("")
    return render(
        '<span class="badge {level}">{word}</span>', level=verdict.level, word=verdict.word
    )


# --- overview ---------------------------------------------------------------------------


def overview_body(
    *,
    sensors: list[SensorSummary],
    gateways: list[GatewaySummary],
    dead_letters: DeadLetterCounts,
    now: datetime,
    stale_after: timedelta,
) -> Html:
    """The overview: attention banner, gateways, sensors, dead-letter count."""
    return join(
        [
            _banner(sensors=sensors, gateways=gateways, now=now, stale_after=stale_after),
            Html("<h2>Gateways</h2>"),
            _gateway_table(gateways, now=now, stale_after=stale_after),
            Html("<h2>Sensors</h2>"),
            _sensor_table(sensors, now=now, stale_after=stale_after),
            Html("<h2>Dead letters</h2>"),
            render(
                '<p class="dead-letters"><a href="/dead-letters">{total} dead letter{s}</a> '
                "({recent} in the last 24 h): messages ingest could not store.</p>",
                total=dead_letters.total,
                s="" if dead_letters.total == 1 else "s",
                recent=dead_letters.recent,
            ),
        ]
    )


def _banner(
    *,
    sensors: list[SensorSummary],
    gateways: list[GatewaySummary],
    now: datetime,
    stale_after: timedelta,
) -> Html:
    lines: list[tuple[Level, Html]] = []
    for s in sensors:
        value = value_verdict(quantity=s.quantity, unit=s.unit, value=s.latest_value)
        if value.level is Level.ALARM:
            lines.append(
                (
                    Level.ALARM,
                    render(
                        '{word}: <a href="/sensors/{id}">{uid}</a> {value}, at {time} UTC',
                        word=value.word,
                        id=s.id,
                        uid=s.uid,
                        value=format_value(s.latest_value, s.unit),
                        time=format_time(s.latest_time),
                    ),
                )
            )
        fresh = freshness_verdict(latest=s.latest_time, now=now, stale_after=stale_after)
        if fresh.level is Level.WARNING:
            lines.append(
                (
                    Level.WARNING,
                    render(
                        '{word}: <a href="/sensors/{id}">{uid}</a> {quantity}, last reading {age}',
                        word=fresh.word,
                        id=s.id,
                        uid=s.uid,
                        quantity=s.quantity,
                        age=format_age(s.latest_time, now=now),
                    ),
                )
            )
    for g in gateways:
        verdict = gateway_verdict(
            status=g.status, last_seen=g.last_seen, now=now, stale_after=stale_after
        )
        if verdict.level in (Level.ALARM, Level.WARNING):
            lines.append(
                (
                    verdict.level,
                    render(
                        "Gateway {word}: {id} ({site}), last seen {age}",
                        word=verdict.word,
                        id=g.id,
                        site=g.site,
                        age=format_age(g.last_seen, now=now),
                    ),
                )
            )
    if not sensors:
        return Html(
            '<section class="banner neutral"><p>No sensors have reported yet.</p></section>'
        )
    if not lines:
        return render(
            '<section class="banner ok"><p><strong>ALL OK</strong>: every sensor is reporting'
            " and every temperature is inside {limits}.</p></section>",
            limits=format_range(LOW_C, HIGH_C, "Cel"),
        )
    worst = max((level for level, _ in lines), key=_SEVERITY.__getitem__)
    heading = "NEEDS ATTENTION NOW" if worst is Level.ALARM else "CHECK"
    items = join(render('<li class="{level}">{text}</li>', level=lvl, text=t) for lvl, t in lines)
    return render(
        '<section class="banner {level}"><p><strong>{heading}</strong></p>'
        "<ul>{items}</ul></section>",
        level=worst,
        heading=heading,
        items=items,
    )


def _gateway_table(
    gateways: list[GatewaySummary], *, now: datetime, stale_after: timedelta
) -> Html:
    if not gateways:
        return Html('<p class="empty">No gateway has connected yet.</p>')
    rows = []
    for g in gateways:
        verdict = gateway_verdict(
            status=g.status, last_seen=g.last_seen, now=now, stale_after=stale_after
        )
        streams = join(
            (
                render(
                    "<div>{stream}: stored up to #{seq}{pending}</div>",
                    stream=w.stream,
                    seq=w.committed_seq,
                    pending=f", {w.pending_ranges} range(s) waiting for a gap"
                    if w.pending_ranges
                    else "",
                )
                for w in g.streams
            ),
        )
        sources = join(
            (
                render(
                    "<div>{name}: {state}{error}</div>",
                    name=src.name,
                    state=badge(
                        Verdict(Level.OK, "OK") if src.ok else Verdict(Level.ALARM, "FAULT")
                    ),
                    error=f" {src.error}" if src.error else "",
                )
                for src in g.sources
            ),
        )
        rows.append(
            render(
                "<tr><td>{id}</td><td>{site}</td><td>{status}</td>"
                '<td><span class="nowrap">{seen}</span> <span class="age">{age}</span></td>'
                '<td class="num">{outbox}</td><td>{streams}</td><td>{sources}</td></tr>',
                id=g.id,
                site=g.site,
                status=badge(verdict),
                seen=format_time(g.last_seen),
                age=format_age(g.last_seen, now=now),
                outbox="—" if g.outbox_depth is None else g.outbox_depth,
                streams=streams or Html("—"),
                sources=sources or Html("—"),
            )
        )
    return render(
        '<table class="gateways"><thead><tr><th>Gateway</th><th>Site</th><th>Status</th>'
        "<th>Last seen (UTC)</th><th>Outbox</th><th>Committed watermark</th><th>Sources</th>"
        "</tr></thead><tbody>{rows}</tbody></table>",
        rows=join(rows),
    )


def _sensor_table(sensors: list[SensorSummary], *, now: datetime, stale_after: timedelta) -> Html:
    if not sensors:
        return Html('<p class="empty">No sensor has reported yet.</p>')
    rows = []
    for s in sensors:
        value = value_verdict(quantity=s.quantity, unit=s.unit, value=s.latest_value)
        fresh = freshness_verdict(latest=s.latest_time, now=now, stale_after=stale_after)
        rows.append(
            render(
                '<tr><td><a href="/sensors/{id}">{uid}</a></td><td>{quantity}</td>'
                "<td>{gateway}</td>"
                '<td class="value {level}"><span class="reading">{value}</span> {word}</td>'
                '<td><span class="nowrap">{time}</span> {fresh} <span class="age">{age}</span></td>'
                '<td class="num">{count}</td></tr>',
                id=s.id,
                uid=s.uid,
                quantity=s.quantity,
                gateway=s.gateway_id or "—",
                level=value.level,
                value=format_value(s.latest_value, s.unit),
                word=badge(value),
                time=format_time(s.latest_time),
                fresh=badge(fresh) if fresh.level is not Level.OK else Html(""),
                age=format_age(s.latest_time, now=now),
                count=s.readings_24h,
            )
        )
    return render(
        '<table class="sensors"><thead><tr><th>Sensor</th><th>Measures</th><th>Gateway</th>'
        "<th>Latest value</th><th>Latest reading (UTC)</th><th>Readings, 24 h</th></tr></thead>"
        "<tbody>{rows}</tbody></table>",
        rows=join(rows),
    )


# --- sensor detail -------------------------------------------------------------------


def sensor_body(
    *,
    series: ReadingSeries,
    profile: AlarmProfile | None,
    hours: int,
    now: datetime,
    stale_after: timedelta,
) -> Html:
    """One sensor: latest value, range links, the chart (its alarm profile's bands), figures."""
    s = series.sensor
    unit = display_unit(s.unit)
    limits = None if profile is None else (profile.low, profile.high)
    warn = (
        (profile.warn_low, profile.warn_high)
        if profile is not None and profile.pre_alarm_band > 0
        else None
    )
    source = "" if profile is None else f" (alarm profile {profile.name})"
    value = value_verdict(quantity=s.quantity, unit=s.unit, value=s.latest_value, limits=limits)
    fresh = freshness_verdict(latest=s.latest_time, now=now, stale_after=stale_after)
    chart = Chart(
        title=f"{s.uid} {s.quantity}, last {_hours_label(hours)}",
        quantity=s.quantity,
        unit=unit,
        start=series.start,
        end=series.end,
        buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in series.buckets],
        limits=limits,
        limits_label=f"allowed {format_range(*limits, s.unit)}{source}" if limits else "",
        warn=warn,
    )
    ranges = join(
        render(
            '<a href="?hours={h}"{current}>{label}</a>',
            h=h,
            current=Html(' aria-current="page" class="current"') if h == hours else Html(""),
            label=_hours_label(h),
        )
        for h in RANGE_CHOICES_HOURS
    )
    legend = render(
        "Line: mean of the readings in each {width} interval. Shaded: lowest to highest"
        " reading in that interval. A break in the line: no readings.{limits}",
        width=format_span(timedelta(seconds=series.bucket_seconds)),
        limits=(
            f" Green band: allowed {format_range(*limits, s.unit)}{source}"
            + ("; amber strips: pre-alarm" if warn else "")
            + "; red: outside it."
        )
        if limits
        else "",
    )
    return render(
        '<p class="crumbs"><a href="/">Overview</a> &rsaquo; {uid}</p>'
        '<div class="facts">'
        '<div class="fact big value {level}"><span class="label">Latest</span>'
        '<span class="reading">{value}</span> {word}</div>'
        '<div class="fact"><span class="label">Reading time (UTC)</span>{time} {fresh}'
        ' <span class="age">{age}</span></div>'
        '<div class="fact"><span class="label">Gateway</span>{gateway}</div>'
        '<div class="fact"><span class="label">Readings, 24 h</span>{count}</div>'
        "</div>"
        '<nav class="ranges" aria-label="Time range">Show last: {ranges}</nav>'
        "<figure>{chart}<figcaption>{legend}</figcaption></figure>"
        "{stats}",
        uid=s.uid,
        level=value.level,
        value=format_value(s.latest_value, s.unit),
        word=badge(value),
        time=format_time(s.latest_time),
        fresh=badge(fresh),
        age=format_age(s.latest_time, now=now),
        gateway=s.gateway_id or "—",
        count=s.readings_24h,
        ranges=ranges,
        chart=render_chart(chart),
        legend=legend,
        stats=_period_stats(series),
    )


def _period_stats(series: ReadingSeries) -> Html:
    buckets = series.buckets
    unit = series.sensor.unit
    count = sum(b.count for b in buckets)
    if not count:
        return render(
            '<p class="empty">No readings between {start} and {end} UTC.</p>',
            start=format_time(series.start),
            end=format_time(series.end),
        )
    mean = sum(b.mean * b.count for b in buckets) / count
    return render(
        '<table class="stats"><tbody>'
        "<tr><th>Period (UTC)</th><td>{start} to {end}</td></tr>"
        '<tr><th>Readings</th><td class="num">{count}</td></tr>'
        '<tr><th>Lowest</th><td class="num">{low}</td></tr>'
        '<tr><th>Highest</th><td class="num">{high}</td></tr>'
        '<tr><th>Mean</th><td class="num">{mean}</td></tr>'
        "</tbody></table>",
        start=format_time(series.start),
        end=format_time(series.end),
        count=count,
        low=format_value(min(b.min for b in buckets), unit),
        high=format_value(max(b.max for b in buckets), unit),
        mean=format_value(mean, unit),
    )


def _hours_label(hours: int) -> str:
    return f"{hours // 24} days" if hours >= 48 and hours % 24 == 0 else f"{hours} h"


# --- dead letters ----------------------------------------------------------------------


def dead_letters_body(*, letters: list[DeadLetter], counts: DeadLetterCounts, limit: int) -> Html:
    """The newest dead letters with reason and payload preview."""
    limits = join(
        render(
            '<a href="?limit={n}"{current}>{n}</a>',
            n=n,
            current=Html(' aria-current="page" class="current"') if n == limit else Html(""),
        )
        for n in DEAD_LETTER_LIMITS
    )
    intro = render(
        "<p>Messages or items ingest could not store, with the reason and the raw bytes. "
        "{total} in all, {recent} in the last 24 h. Newest first.</p>"
        '<nav class="ranges" aria-label="How many">Show: {limits}</nav>',
        total=counts.total,
        recent=counts.recent,
        limits=limits,
    )
    if not letters:
        return join([intro, Html('<p class="empty">No dead letters. Nothing was rejected.</p>')])
    rows = join(
        render(
            '<tr><td class="nowrap">{time}</td><td class="topic">{topic}</td>'
            "<td>{origin}</td><td>{reason}{times}</td>"
            "<td><details><summary>{size} bytes, {encoding}{cut}</summary>"
            '<p class="hash">sha256 {sha256}</p><pre>{payload}</pre></details></td></tr>',
            time=format_time(d.received_at),
            topic=d.topic,
            origin=_origin(d),
            reason=d.reason,
            times=f" (received {d.times_received} times)" if d.times_received > 1 else "",
            sha256=d.payload_sha256,
            size=d.payload_bytes,
            encoding="text" if d.payload_encoding == "utf-8" else "binary (hex)",
            cut=", first 2 kB shown" if d.payload_truncated else "",
            payload=d.payload,
        )
        for d in letters
    )
    return render(
        '{intro}<table class="dead"><thead><tr><th>Received (UTC)</th><th>Topic</th>'
        "<th>From</th><th>Reason</th><th>Payload</th></tr></thead><tbody>{rows}</tbody></table>",
        intro=intro,
        rows=rows,
    )


def _origin(d: DeadLetter) -> str:
    parts = [d.gateway_id or "unknown gateway"]
    if d.stream is not None:
        parts.append(f"stream {d.stream}")
    if d.seq is not None:
        parts.append(f"seq {d.seq}")
    if d.item_index is not None:
        parts.append(f"item {d.item_index}")
    return ", ".join(parts)
