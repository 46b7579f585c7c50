"""The alert kinds and severities — one list, which ingest raises and the ERP reads.

``telemetry.alerts.kind`` is free text in the schema; this enum is what may be written
there. Each kind is raised at one severity (``RAISED_AT``): the evaluation takes it from
here, and the two-person rule (``coldchain.recipients``) checks the route set at exactly
the severity each kind arrives with. ``Severity`` mirrors the CHECK constraint of
``telemetry.alerts.severity`` (a test compares them). ``KIND_WORDS``: what each kind
means in words, for e-mails, pages and reports, instead of its code.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Severity(StrEnum):
    """How urgent an alert is, in rising order."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITIES: tuple[Severity, ...] = tuple(Severity)


def severity_rank(severity: str) -> int:
    """Order of a severity: info < warning < critical (unknown counts as critical)."""
    return SEVERITIES.index(Severity(severity)) if severity in SEVERITIES else len(SEVERITIES) - 1


class AlertKind(StrEnum):
    """What an alert is about."""

    EXCURSION_HIGH = "excursion_high"
    EXCURSION_LOW = "excursion_low"
    PRE_ALARM_HIGH = "pre_alarm_high"
    PRE_ALARM_LOW = "pre_alarm_low"
    MKT_EXCEEDED = "mkt_exceeded"
    TOR_BUDGET_EXCEEDED = "tor_budget_exceeded"
    POWER_LOSS = "power_loss"
    OFFLINE = "offline"
    LOW_BATTERY = "low_battery"
    SENSOR_FAULT = "sensor_fault"
    SENSOR_STUCK = "sensor_stuck"
    CALIBRATION_OVERDUE = "calibration_overdue"


# The severity each kind is raised at (ingest's evaluation reads it from here).
RAISED_AT: Mapping[AlertKind, Severity] = MappingProxyType(
    {
        AlertKind.EXCURSION_HIGH: Severity.CRITICAL,
        AlertKind.EXCURSION_LOW: Severity.CRITICAL,
        AlertKind.PRE_ALARM_HIGH: Severity.WARNING,
        AlertKind.PRE_ALARM_LOW: Severity.WARNING,
        AlertKind.MKT_EXCEEDED: Severity.CRITICAL,
        AlertKind.TOR_BUDGET_EXCEEDED: Severity.CRITICAL,
        AlertKind.POWER_LOSS: Severity.CRITICAL,
        AlertKind.OFFLINE: Severity.WARNING,
        AlertKind.LOW_BATTERY: Severity.WARNING,
        AlertKind.SENSOR_FAULT: Severity.WARNING,
        AlertKind.SENSOR_STUCK: Severity.WARNING,
        AlertKind.CALIBRATION_OVERDUE: Severity.WARNING,
    }
)

# The alarms that must reach enough named people at once (docs/notifications.md, "The
# two-person rule"): storage conditions reached or breached — the pre-alarm at the
# warning limit (NMPA: "reaching the critical value"), the excursion beyond the limit,
# the rolling MKT and time-out-of-range limits (EU GDP: excursions from the storage
# conditions) — and mains power lost (NMPA: a power cut is messaged the same way).
TWO_PERSON_KINDS: tuple[AlertKind, ...] = (
    AlertKind.EXCURSION_HIGH,
    AlertKind.EXCURSION_LOW,
    AlertKind.PRE_ALARM_HIGH,
    AlertKind.PRE_ALARM_LOW,
    AlertKind.MKT_EXCEEDED,
    AlertKind.TOR_BUDGET_EXCEEDED,
    AlertKind.POWER_LOSS,
)
# ... each at the severity it is raised at: the one list the rule covers.
TWO_PERSON_ALARMS: tuple[tuple[AlertKind, Severity], ...] = tuple(
    (kind, RAISED_AT[kind]) for kind in TWO_PERSON_KINDS
)

# What happened, in words, completing "FRIDGE-3 temperature ..." ("above the upper limit").
KIND_WORDS: Mapping[str, str] = MappingProxyType(
    {
        AlertKind.EXCURSION_HIGH: "above the upper limit",
        AlertKind.EXCURSION_LOW: "below the lower limit",
        AlertKind.PRE_ALARM_HIGH: "close to the upper limit (pre-alarm)",
        AlertKind.PRE_ALARM_LOW: "close to the lower limit (pre-alarm)",
        AlertKind.MKT_EXCEEDED: "mean kinetic temperature over its limit",
        AlertKind.TOR_BUDGET_EXCEEDED: "time out of range over its budget",
        AlertKind.POWER_LOSS: "mains power lost",
        AlertKind.OFFLINE: "no readings arriving (offline)",
        AlertKind.LOW_BATTERY: "battery low",
        AlertKind.SENSOR_FAULT: "sensor fault",
        AlertKind.SENSOR_STUCK: "stuck on one value (sensor fault suspected)",
        AlertKind.CALIBRATION_OVERDUE: "calibration overdue",
    }
)
# Kinds whose figure is not a peak reading: what the figure is.
FIGURE_WORDS: Mapping[str, str] = MappingProxyType(
    {AlertKind.MKT_EXCEEDED: "MKT", AlertKind.TOR_BUDGET_EXCEEDED: "time out of range"}
)


def kind_words(kind: str) -> str:
    """``excursion_high`` → ``above the upper limit``; an unknown kind with spaces."""
    return KIND_WORDS.get(kind, kind.replace("_", " "))


def figure_words(kind: str) -> str:
    """What the alert's figure is: ``peak`` unless the kind says otherwise (``MKT``)."""
    return FIGURE_WORDS.get(kind, "peak")
