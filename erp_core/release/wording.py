"""Release rules in the reader's language: a rule's name and its evidence from code + values.

The rules (``erp_core.release.rules``) sign English text and also give each result a
``code`` and its ``values``; this module turns those into the words of a catalog, with
numbers and dates formatted for the locale by Babel. The lot page (web catalog) and the
PDF report use the same words. A result stored before rules had codes (a decision's
recommendation, a proposal's failed rules) keeps its English evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from erp_core.web.words import N_, word_for

RULE_NAMES: dict[str, str] = {
    "lot in quarantine and not expired": N_("Lot in quarantine and not expired"),
    "excursions dispositioned": N_("Excursions dispositioned"),
    "mean kinetic temperature": N_("Mean kinetic temperature"),
    "time out of range within budget": N_("Time out of range within budget"),
    "temperature record complete": N_("Temperature record complete"),
    "inspections passed": N_("Inspections passed"),
    "no open deviation": N_("No open deviation"),
}

EVIDENCE: dict[str, str] = {
    "lot_status": N_("the lot is %(status)s"),
    "expired": N_("expired on %(date)s"),
    "excursions_none": N_("no excursion touched the lot"),
    "excursions_open": N_("without disposition: %(items)s"),
    "excursions_done": N_("all dispositioned (%(items)s)"),
    "mkt_no_limit": N_("the item sets no MKT limit"),
    "mkt_no_readings": N_("no readings, so MKT cannot be computed"),
    "mkt": N_("MKT %(mkt)s °C, limit %(limit)s °C"),
    "tor_no_budget": N_("%(minutes)s min out of range; the item allows none"),
    "tor": N_("%(minutes)s min out of range of a %(budget)s min budget"),
    "coverage": N_("readings cover %(share)s of the lot's life"),
    "coverage_gaps": N_(
        "readings cover %(share)s of the lot's life; %(gaps)s gap(s), the first %(start)s – %(end)s"
    ),
    "inspections_failed": N_("%(n)s failed inspection(s)"),
    "inspections_pending": N_("%(n)s inspection(s) pending"),
    "inspections_ok": N_("no failed or pending inspection"),
    "deviations_open": N_("open: %(numbers)s"),
    "deviations_none": N_("no open deviation"),
}
# Lot states, dispositions and the Part 11 meanings of release signatures, as words.
CODES: dict[str, str] = {
    "quarantine": N_("Quarantine"),
    "released": N_("Released"),
    "rejected": N_("Rejected"),
    "on_hold": N_("On hold"),
    "recalled": N_("Recalled"),
    "use_as_is": N_("use as is"),
    "investigate": N_("investigate"),
    "Proposed override": N_("Proposed override"),
    "Approved override": N_("Approved override"),
    "allowed": N_("all rules passed"),
    "override": N_("override of failed rules"),
}
OPEN_EXCURSION = N_("#%(id)s (%(sensor)s, peak %(peak)s °C)")
DONE_EXCURSION = N_("#%(id)s: %(disposition)s")


@dataclass(frozen=True, slots=True)
class Wording:
    """How one reader's words are made: the catalog, the locale, codes and times as words."""

    gettext: Callable[[str], str]
    locale: str
    moment: Callable[[datetime], str]  # a time as the reader's pages show it

    def code(self, code: str) -> str:
        """A stored code (status, disposition, signature meaning) as a translated word."""
        return self.gettext(CODES.get(code) or word_for(code))

    def name(self, rule: Mapping[str, Any] | Any) -> str:
        """The rule's name in the reader's language."""
        raw = str(_get(rule, "rule"))
        return self.gettext(RULE_NAMES[raw]) if raw in RULE_NAMES else raw

    def evidence(self, rule: Mapping[str, Any] | Any) -> str:
        """The rule's evidence in the reader's language (the signed English if it has no code)."""
        code = str(_get(rule, "code", "") or "")
        values = _get(rule, "values", None) or {}
        if code not in EVIDENCE:
            return str(_get(rule, "evidence"))
        try:
            return self.gettext(EVIDENCE[code]) % self._values(code, values)
        except (KeyError, TypeError, ValueError):  # stored values not as this version writes
            return str(_get(rule, "evidence"))

    def _values(self, code: str, values: Mapping[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in values.items():
            out[key] = self._one(code, key, value)
        return out

    def _one(self, code: str, key: str, value: Any) -> str:  # noqa: PLR0911 - one format per kind
        if key == "items":
            return ", ".join(self._item(code, item) for item in value)
        if key == "share":
            return format_percent(float(value), format="#,##0.0%", locale=self.locale)
        if key in {"mkt", "limit"}:
            return format_decimal(float(value), format="0.00", locale=self.locale)
        if key in {"start", "end"}:
            return self.moment(datetime.fromisoformat(str(value)))
        if key == "date":
            return format_date(date.fromisoformat(str(value)), format="medium", locale=self.locale)
        if key == "status":
            return self.code(str(value))
        if isinstance(value, int | float):
            return format_decimal(value, locale=self.locale)
        return str(value)

    def _item(self, code: str, item: Mapping[str, Any]) -> str:
        if code == "excursions_open":
            peak = format_decimal(float(item["peak"]), format="0.0", locale=self.locale)
            return self.gettext(OPEN_EXCURSION) % {
                "id": item["id"],
                "sensor": item["sensor"],
                "peak": peak,
            }
        return self.gettext(DONE_EXCURSION) % {
            "id": item["id"],
            "disposition": self.code(str(item["disposition"])),
        }


def _get(rule: Mapping[str, Any] | Any, name: str, default: Any = None) -> Any:
    """A field of a rule result, whether a ``RuleResult`` or its stored JSON."""
    if isinstance(rule, Mapping):
        return rule.get(name, default)
    return getattr(rule, name, default)
