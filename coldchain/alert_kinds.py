"""What each kind of alert means, in words a person reads instead of its code.

The alert kinds are written by the evaluation (``ingest``) and read by people in
e-mails, pages and reports; the words live here, once, beside the rules that raise them.
A kind not listed reads as its code with spaces, never as nothing.
"""

from __future__ import annotations

# kind -> what happened, completing "FRIDGE-3: temperature ..." ("above the upper limit")
KIND_WORDS = {
    "excursion_high": "above the upper limit",
    "excursion_low": "below the lower limit",
    "pre_alarm_high": "close to the upper limit (pre-alarm)",
    "pre_alarm_low": "close to the lower limit (pre-alarm)",
    "mkt_exceeded": "mean kinetic temperature over its limit",
    "tor_budget_exceeded": "time out of range over its budget",
    "offline": "no readings arriving (offline)",
    "sensor_stuck": "stuck on one value (sensor fault suspected)",
    "sensor_fault": "sensor fault",
    "calibration_overdue": "calibration overdue",
}
# kinds whose figure is not a peak reading: what the figure is
FIGURE_WORDS = {"mkt_exceeded": "MKT", "tor_budget_exceeded": "time out of range"}


def kind_words(kind: str) -> str:
    """``excursion_high`` → ``above the upper limit``; unknown kinds with spaces."""
    return KIND_WORDS.get(kind, kind.replace("_", " "))


def figure_words(kind: str) -> str:
    """What the alert's figure is: ``peak`` unless the kind says otherwise (``MKT``)."""
    return FIGURE_WORDS.get(kind, "peak")
