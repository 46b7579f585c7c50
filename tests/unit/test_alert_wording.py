"""Alert messages use words and units, not codes, and name the lots exposed (issue 11).

The e-mail of the demo read "peak 8.1 Cel, 0 s" and named no lot.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from coldchain.alert_kinds import KIND_WORDS, AlertKind, kind_words
from ingest.notify.models import AlertNotice, ExposedLot
from ingest.notify.render import LOTS_IN_SUBJECT, format_lasting, render
from telemetry.payloads import UNITS
from telemetry.units import UNIT_SYMBOLS, display_unit, with_unit

T0 = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
GTIN = "04006381333931"


def notice(**kw: object) -> AlertNotice:
    base: dict[str, object] = {
        "event_id": 1, "alert_id": 7, "event": "opened", "level": 0, "at": T0,
        "kind": "excursion_high", "severity": "critical", "status": "open",
        "summary": "too warm", "started_at": T0, "site": "plant-demo", "location": "Fridge 3",
        "sensor": "FRIDGE-3", "quantity": "temperature", "unit": "Cel", "peak": 8.1,
        "duration_s": 0.0, "limits": {"low": 2.0, "high": 8.0},
    }  # fmt: skip
    return AlertNotice(**{**base, **kw})  # type: ignore[arg-type]


def test_the_demo_email_reads_in_words_units_and_lots() -> None:
    """The demo's first e-mail: 8.1 °C, above the upper limit, just started, its lot."""
    lot = ExposedLot("L-2026-003", "Vascular graft 6 mm", GTIN)
    msg = render(notice(lots=(lot,)), base_url="http://ui", tz=None)
    assert "8.1 °C" in msg.subject
    assert "above the upper limit" in msg.subject
    assert "just started" in msg.subject
    assert "lot L-2026-003" in msg.subject
    assert "L-2026-003 (Vascular graft 6 mm, GTIN 04006381333931)" in msg.body
    assert "Limits:      2 – 8 °C" in msg.body
    for code in ("Cel", "excursion_high", ", 0 s"):
        assert code not in msg.subject + msg.body + msg.short, code
    assert msg.document["kind"] == "excursion_high"  # machines keep the code
    assert msg.document["lots"] == [
        {"lot_number": "L-2026-003", "item": "Vascular graft 6 mm", "gtin": GTIN}
    ]
    assert "http://ui/alerts/7" in msg.body


def test_durations_in_words() -> None:
    assert format_lasting(200, ongoing=False) == "3 min 20 s"
    assert format_lasting(200, ongoing=True) == "3 min 20 s so far"
    assert format_lasting(0.2, ongoing=True) == "just started"
    assert format_lasting(None, ongoing=True) == "unknown so far"
    ended = render(notice(duration_s=200.0, ended_at=T0), base_url="http://ui")
    assert "Duration:    3 min 20 s\n" in ended.body


def test_no_lot_and_unknown_lots_are_said_as_such() -> None:
    none = render(notice(lots=()), base_url="http://ui")
    assert "Lots:        none in custody" in none.body
    assert "lot" not in none.subject
    unknown = render(notice(lots=None), base_url="http://ui")
    assert "Lots:        unknown" in unknown.body
    assert unknown.document["lots"] is None


def test_every_wire_unit_has_a_symbol_and_temperatures_read_in_celsius() -> None:
    """Each unit the wire contract allows prints as a person writes it (no UCUM code left)."""
    for units in UNITS.values():
        for unit in units:
            assert unit in UNIT_SYMBOLS, unit
    assert with_unit(8.1, "Cel") == "8.1 °C"
    assert with_unit(8.04, "Cel", decimals=2) == "8.04 °C"
    assert with_unit(1, "1") == "1"
    assert display_unit("mystery") == "mystery"


def test_every_alert_kind_has_its_words() -> None:
    """A new kind gets words in coldchain.alert_kinds, or this fails."""
    assert set(KIND_WORDS) == set(AlertKind)


@given(st.text(alphabet="abcdefghij_", min_size=1, max_size=20))
def test_every_kind_reads_without_underscores(kind: str) -> None:
    words = kind_words(kind)
    assert "_" not in words
    assert words == KIND_WORDS.get(kind, words)


@given(
    st.lists(
        st.builds(
            ExposedLot,
            st.text(alphabet="ABLXZ0123456789-/", min_size=1, max_size=12),
            st.just("Graft"),
            st.just(GTIN),
        ),
        max_size=8,
    ),
    st.sampled_from(sorted(KIND_WORDS)),
    st.floats(-40, 60),
)
def test_every_lot_is_in_the_body_and_a_few_in_the_subject(
    lots: list[ExposedLot], kind: str, peak: float
) -> None:
    msg = render(notice(lots=tuple(lots), kind=kind, peak=peak), base_url="http://ui")
    body_lots = msg.body.split("Lots:", 1)[1].split("Escalation:", 1)[0]
    for lot in lots:
        assert f"{lot.lot_number} (Graft, GTIN {GTIN})" in body_lots
    if len(lots) > LOTS_IN_SUBJECT:
        assert f"+{len(lots) - LOTS_IN_SUBJECT} more" in msg.subject
    if "_" in kind:  # a code, not a word: never shown to people
        assert kind not in msg.subject + msg.body + msg.short
    assert "Cel" not in msg.subject + msg.body
    assert kind_words(kind) in msg.subject
