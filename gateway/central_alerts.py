"""Central alerts on the local alarm output, pure: which alert events hold a relay on.

The local limits (`gateway.alarm`) sound the alarm at once when a reading is beyond
them; the central alert rules (ingest) know more: alarm delays, MKT, late data from a
truck. An alarm output configured with ``central_alerts: true`` is therefore also held
on while an alert on one of its watched sensors is open, as the notifier announces on
``ct/v1/{site}/alerts`` (docs/wire-contract.md, `alerts`). Acknowledging or closing
the alert centrally releases it; the local limits still hold the output on by
themselves while a reading is beyond them.

This module reads the documented alert event document, and nothing else of it: a
malformed or foreign message is ignored (it must not stop the gateway). Only the
notifier's broker account may publish on the alerts topic, and a gateway may read only
its own site's (docs/mqtt.md), so another gateway cannot drive this one's relays.
"""

from __future__ import annotations

import msgspec

from telemetry.topics import PREFIX, check_id

HOLDING_STATUS = "open"  # an acknowledged or closed alert no longer holds the output
MAX_REASON = 200  # characters of an event's summary kept as the cause of a held output


class AlertEvent(msgspec.Struct, frozen=True):
    """The fields of the notifier's alert event document that the gateway uses."""

    type: str
    alert_id: int
    status: str
    sensor: str | None = None
    kind: str | None = None
    summary: str | None = None


_decoder = msgspec.json.Decoder(AlertEvent)


def alerts_topic(site: str) -> str:
    """The topic the notifier publishes this site's alert events on."""
    return f"{PREFIX}/{check_id(site, 'site')}/alerts"


def decode_alert_event(payload: bytes) -> AlertEvent | None:
    """Decode an alert event document; None for anything else."""
    try:
        event = _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError):  # msgspec raises the latter on deep nesting
        return None
    return event if event.type == "alert_event" else None


def hold_reason(event: AlertEvent) -> str | None:
    """Why ``event`` holds an output on (``"central alert 12: …"``), or None if it releases it."""
    if event.status != HOLDING_STATUS:
        return None
    what = (event.summary or event.kind or "open")[:MAX_REASON]  # it goes into every state
    return f"central alert {event.alert_id}: {what}"
