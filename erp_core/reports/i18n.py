"""The report's gettext catalog (zh_CN; English is the source) and its printed words.

Shaped as the web pages' catalogs are (``locale/<lang>/LC_MESSAGES/messages.po``,
Babel, compiled in memory at import, so no stale ``.mo`` ships): once the shared
catalog of ``erp_core/locale`` exists, these messages move into it and this module
becomes ``erp_core.web.i18n.translations``.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LOCALE = "en"
LOCALES: tuple[str, ...] = ("en", "zh_CN")


def _(message: str) -> str:
    """Mark a message for extraction; translated where it is printed."""
    return message


# Codes stored in the database -> the English words printed (then translated).
WORDS: dict[str, str] = {
    "quarantine": _("Quarantine"),
    "released": _("Released"),
    "rejected": _("Rejected"),
    "on_hold": _("On hold"),
    "recalled": _("Recalled"),
    "allowed": _("All rules passed"),
    "override": _("Override of failed rules"),
    "Proposed override": _("Proposed override"),
    "Approved override": _("Approved override"),
    "high": _("High"),
    "low": _("Low"),
    "alarm": _("alarm"),
    "pre_alarm": _("pre-alarm"),
    "open": _("Open"),
    "closed": _("Closed"),
    "use_as_is": _("Use as is"),
    "investigate": _("Investigate"),
    "reject": _("Reject"),
    "location": _("Location"),
    "shipment": _("Shipment"),
    "excursions dispositioned": _("Excursions dispositioned"),
    "mean kinetic temperature": _("Mean kinetic temperature"),
    "time out of range within budget": _("Time out of range within budget"),
    "temperature record complete": _("Temperature record complete"),
    "inspections passed": _("Inspections passed"),
    "no open deviation": _("No open deviation"),
    "lot in quarantine and not expired": _("Lot in quarantine and not expired"),
}


def _compile(lang: str) -> NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


CATALOGS: dict[str, NullTranslations] = {lang: _compile(lang) for lang in LOCALES}


def translations(locale: str) -> NullTranslations:
    """The catalog of ``locale`` (English for a locale we do not translate)."""
    return CATALOGS.get(locale, CATALOGS[DEFAULT_LOCALE])
