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
    # alerts (erp_core/alerts pages): kinds, states, severities, dispositions, events,
    # notification channels and delivery states, a deviation's lot disposition
    "pre_alarm_high": N_("close to the upper limit (pre-alarm)"),
    "pre_alarm_low": N_("close to the lower limit (pre-alarm)"),
    "mkt_exceeded": N_("mean kinetic temperature over its limit"),
    "tor_budget_exceeded": N_("time out of range over its budget"),
    "power_loss": N_("mains power lost"),
    "offline": N_("no readings arriving (offline)"),
    "low_battery": N_("battery low"),
    "sensor_fault": N_("sensor fault"),
    "sensor_stuck": N_("stuck on one value (sensor fault suspected)"),
    "calibration_overdue": N_("calibration overdue"),
    "acknowledged": N_("acknowledged"),
    "critical": N_("critical"),
    "info": N_("information"),
    "no impact": N_("no impact"),
    "product assessed": N_("product assessed"),
    "product rejected": N_("product rejected"),
    "false alarm": N_("false alarm"),
    "opened": N_("opened"),
    "updated": N_("updated"),
    "escalated": N_("escalated"),
    "email": N_("e-mail"),
    "sms": N_("SMS"),
    "voice": N_("voice call"),
    "webhook": N_("webhook"),
    "mqtt": N_("MQTT"),
    "pending": N_("waiting"),
    "sending": N_("sending"),
    "sent": N_("sent"),
    "failed": N_("failed"),
    "use_as_is": N_("use as is"),
    "investigate": N_("investigate"),
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
