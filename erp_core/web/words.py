"""Stored codes as the words a person reads (translated by the pages' catalogs).

``N_`` only marks a message for extraction (``pybabel extract`` knows the keyword); the
template filter ``code`` (``erp_core.web.templates``) translates it when a page shows it.
A code without a word here is shown as it is.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """``message`` itself: marks it for the catalogs."""
    return message


WORDS: dict[str, str] = {
    # excursion kinds and levels (coldchain episodes)
    "excursion_high": N_("too warm"),
    "excursion_low": N_("too cold"),
    "high": N_("too warm"),
    "low": N_("too cold"),
    "alarm": N_("alarm"),
    "pre_alarm": N_("pre-alarm"),
    "warning": N_("warning"),
    # release actions
    "release": N_("release"),
    "reject": N_("reject"),
    # deviation states
    "open": N_("open"),
    "closed": N_("closed"),
    # the roles of erp_core.auth.models.Role
    "admin": N_("administrator"),
    "qa": N_("QA"),
    "qa_manager": N_("QA manager"),
    "warehouse": N_("warehouse"),
    "operator": N_("operator"),
    # what a sensor measures (telemetry.sensors.quantity)
    "temperature": N_("temperature"),
    "humidity": N_("humidity"),
    "battery": N_("battery"),
    "rssi": N_("signal strength"),
    "pressure": N_("pressure"),
    "door": N_("door"),
}


def word_for(code: str) -> str:
    """The untranslated word of ``code`` (the msgid), or ``code`` itself."""
    return WORDS.get(code, code)
