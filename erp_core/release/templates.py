"""HTML of the lot pages: list, temperature history, deviations and the release panel. Pure."""

from __future__ import annotations

from typing import Any

from erp_core.deviations.templates import deviations_table
from erp_core.lot_history.models import HistoryStats, LotHistory
from erp_core.lots.models import Lot
from erp_core.release.rules import Recommendation
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import format_time
from erp_core.web.html import Html, Viewer, csrf_field, join, render

STATUS_WORDS = {
    "quarantine": ("QUARANTINE", "warning"),
    "released": ("RELEASED", "ok"),
    "rejected": ("REJECTED", "alarm"),
    "on_hold": ("ON HOLD", "warning"),
    "recalled": ("RECALLED", "alarm"),
}


def status_badge(status: str) -> Html:
    """The lot status as a word in a coloured badge."""
    word, css = STATUS_WORDS.get(status, (status.upper(), "warning"))
    return render('<span class="badge {css}">{word}</span>', css=css, word=word)


def lots_body(lots: list[Lot]) -> Html:
    """The lot list."""
    rows = join(
        render(
            '<tr><td><a href="/lots/{id}">{number}</a></td><td>{gtin}</td><td>{expiry}</td>'
            '<td class="num">{qty}</td><td>{status}</td></tr>',
            id=lot.id,
            number=lot.lot_number,
            gtin=lot.gtin,
            expiry=lot.expires_on.isoformat(),
            qty=f"{lot.quantity:g}",
            status=status_badge(lot.status),
        )
        for lot in lots
    )
    if not lots:
        return Html("<p>No lots yet.</p>")
    return render(
        "<table><thead><tr><th>Lot</th><th>GTIN</th><th>Expiry</th><th>Quantity</th>"
        "<th>Status</th></tr></thead><tbody>{rows}</tbody></table>",
        rows=rows,
    )


def _coverage(s: HistoryStats) -> str:
    """Coverage with every uncovered stretch accounted for, the short ones included."""
    text = f"{s.coverage_share:.1%} of the lot's life; {len(s.gaps)} gap(s) of "
    text += f"{format_seconds(s.min_gap_seconds)} or more"
    if s.short_gaps:
        text += f", {s.short_gaps} shorter ({format_seconds(s.short_gaps_seconds)} in all)"
    return text


def _stats(history: LotHistory) -> Html:
    s = history.stats
    if s is None:
        return render("<p>{note}</p>", note="; ".join(history.notes))

    def c(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f} °C"

    budget = (
        "none set"
        if s.tor_remaining_seconds is None
        else format_span_signed(s.tor_remaining_seconds)
    )
    rows = [
        ("Readings", f"{s.readings:,}"),
        ("Lowest / highest", f"{c(s.min)} / {c(s.max)}"),
        ("Time-weighted mean", c(s.mean)),
        ("Mean kinetic temperature", f"{c(s.mkt)} (limit {c(s.mkt_limit)})"),
        ("Longest time out of range", format_seconds(s.tor_longest_seconds)),
        ("Cumulative time out of range", format_seconds(s.tor_cumulative_seconds)),
        ("Remaining out-of-range budget", budget),
        ("Coverage", _coverage(s)),
    ]
    return render(
        '<table class="stats">{rows}</table>',
        rows=join(render("<tr><th>{k}</th><td>{v}</td></tr>", k=k, v=v) for k, v in rows),
    )


def format_seconds(seconds: float) -> str:
    """A duration as a person reads it: ``41 s``, ``12 min 5 s``, ``3 h 20 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


def format_span_signed(seconds: float) -> str:
    """A remaining budget; negative means overrun."""
    if seconds < 0:
        return f"overrun by {format_seconds(-seconds)}"
    return format_seconds(seconds)


def _chart(history: LotHistory) -> Html:
    s = history.stats
    if s is None:
        return Html("")
    chart = Chart(
        title=f"Lot {history.lot.lot_number}: temperature",
        quantity="temperature",
        unit="°C",
        start=s.life.start,
        end=s.life.end,
        buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in history.buckets],
        limits=(s.range_low, s.range_high),
        limits_label=f"allowed {s.range_low:g}–{s.range_high:g} °C (item storage condition)",
    )
    return render('<div class="chart-box">{svg}</div>', svg=render_chart(chart))


_SIGN_FORM = (
    '<form method="post" action="/lots/{id}/release" class="sign">{csrf}'
    "<h3>Electronic signature</h3>"
    '<p class="signer">Signing as <strong>{name}</strong> ({user})</p>'
    '<label>Decision <select name="action"><option value="release">Release</option>'
    '<option value="reject">Reject</option></select></label>'
    '<label>Your password (asked again at every signature) <input name="password" '
    'type="password" autocomplete="current-password" required></label>'
    "<label>Justification (required to override failed rules)"
    '<textarea name="justification" rows="3"></textarea></label>'
    "<p>By signing you confirm the decision above; your full name, the time and the "
    "meaning are recorded and bound to this decision.</p>"
    '<button type="submit">Sign</button></form>'
)


def _sign_form(lot: Lot, viewer: Viewer, *, may_sign: bool) -> Html:
    if lot.status not in ("quarantine", "on_hold"):
        return Html("")
    if not may_sign:
        return Html(
            '<p class="banner warning">Release and rejection are signed by the roles qa or '
            "qa_manager; you can read this lot but not sign.</p>"
        )
    return render(
        _SIGN_FORM,
        id=lot.id,
        csrf=csrf_field(viewer),
        name=viewer.full_name,
        user=viewer.username,
    )


def _panel(
    rec: Recommendation,
    decisions: list[dict[str, Any]],
    form: Html,
    error: str | None,
) -> Html:
    rules = join(
        render(
            "<tr><td>{badge}</td><td>{rule}</td><td>{evidence}</td></tr>",
            badge=render(
                '<span class="badge {c}">{w}</span>',
                c="ok" if r.passed else "alarm",
                w="PASS" if r.passed else "FAIL",
            ),
            rule=r.rule,
            evidence=r.evidence,
        )
        for r in rec.results
    )
    verdict = (
        render('<p class="banner ok"><strong>RELEASE RECOMMENDED</strong>: every rule passed.</p>')
        if rec.release_recommended
        else render(
            '<p class="banner alarm"><strong>RELEASE BLOCKED</strong>: {n} rule(s) failed. '
            "Only a QA manager may override, with a written justification.</p>",
            n=len(rec.failed),
        )
    )
    signed = join(
        render("<li>{action}: {sig}</li>", action=d["action"].upper(), sig=d["signature"])
        if d["signature_verified"]
        else render(
            '<li class="alarm">{action}: <strong>SIGNATURE DOES NOT VERIFY</strong> — do not '
            "rely on this decision ({why}). Claimed: {sig}</li>",
            action=d["action"].upper(),
            why="; ".join(d["signature_problems"]),
            sig=d["signature"],
        )
        for d in decisions
    )
    err = render('<p class="banner alarm">{e}</p>', e=error) if error else Html("")
    return render(
        "<h2>Release</h2>{err}{verdict}<table><tbody>{rules}</tbody></table>"
        "<h3>Signed decisions</h3><ul>{signed}</ul>{form}",
        err=err,
        verdict=verdict,
        rules=rules,
        signed=signed or Html("<li>None yet.</li>"),
        form=form,
    )


def lot_body(  # noqa: PLR0913 - each part of the page is explicit
    history: LotHistory,
    rec: Recommendation,
    decisions: list[dict[str, Any]],
    deviations: list[dict[str, Any]],
    *,
    viewer: Viewer,
    may_sign: bool,
    error: str | None = None,
) -> Html:
    """The lot detail: status, chart with the allowed band, statistics, deviations, release."""
    lot = history.lot
    excursions = join(
        render(
            "<li>#{id} {kind} {level}: from {start}, peak {peak} °C{late}</li>",
            id=x.id,
            kind=x.kind,
            level=x.level.replace("_", "-"),
            start=format_time(x.start),
            peak=f"{x.peak:.1f}",
            late=" (found in late data)" if x.late else "",
        )
        for x in history.excursions
    )
    return render(
        '<p><a href="/lots">Lots</a> › {number}</p>'
        "<p>GTIN {gtin} · expiry {expiry} · quantity {qty} · {status}</p>"
        "{chart}<h2>Statistics over the lot's life</h2>{stats}"
        "<h2>Excursions</h2><ul>{exc}</ul><h2>Deviations</h2>{devs}{panel}",
        number=lot.lot_number,
        gtin=lot.gtin,
        expiry=lot.expires_on.isoformat(),
        qty=f"{lot.quantity:g}",
        status=status_badge(lot.status),
        chart=_chart(history),
        stats=_stats(history),
        exc=excursions or Html("<li>None.</li>"),
        devs=deviations_table(deviations),
        panel=_panel(rec, decisions, _sign_form(lot, viewer, may_sign=may_sign), error),
    )
