"""Manage recipients and routes, and report what is wrong with them.

Used by ``coldtrace recipients …`` and at notifier start. Plain async functions taking
the caller's connection; none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row

from coldchain.alert_kinds import SEVERITIES
from coldchain.recipients import CoverageGap, coverage_gaps
from ingest.notify.errors import RecipientError
from ingest.notify.models import CHANNELS, EVENTS
from ingest.notify.store import load_recipients, load_routes


async def add_recipient(  # noqa: PLR0913 - every column is an argument
    conn: AsyncConnection[Any],
    *,
    name: str,
    email: str | None = None,
    phone: str | None = None,
    webhook_url: str | None = None,
    role: str = "qa",
    site: str | None = None,
) -> int:
    """Add an active recipient; its id."""
    if not (email or phone or webhook_url) and role != "system":
        raise RecipientError(f"recipient {name!r} needs an e-mail, a phone or a webhook URL")
    try:
        cur = await conn.execute(
            "INSERT INTO telemetry.recipients (name, email, phone, webhook_url, role, site)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (name, email, phone, webhook_url, role, site),
        )
    except errors.UniqueViolation as err:
        raise RecipientError(f"a recipient named {name!r} exists already") from err
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def set_active(conn: AsyncConnection[Any], *, name: str, active: bool) -> None:
    """Activate or deactivate a recipient (rows are never deleted: deliveries refer to them)."""
    cur = await conn.execute(
        "UPDATE telemetry.recipients SET active = %s WHERE name = %s", (active, name)
    )
    if cur.rowcount != 1:
        raise RecipientError(f"no recipient named {name!r}")


async def add_route(  # noqa: PLR0913 - every column is an argument
    conn: AsyncConnection[Any],
    *,
    channel: str,
    recipient: str | None = None,
    role: str | None = None,
    site: str | None = None,
    min_severity: str = "warning",
    kinds: Sequence[str] | None = None,
    events: Sequence[str] = ("opened", "escalated"),
    min_level: int = 0,
) -> int:
    """Add a route for a named recipient or for every recipient of a role; its id."""
    if (recipient is None) == (role is None):
        raise RecipientError("a route names either one recipient or one role")
    if channel not in CHANNELS:
        raise RecipientError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    if min_severity not in SEVERITIES:
        raise RecipientError(f"unknown severity {min_severity!r}")
    if unknown := sorted(set(events) - set(EVENTS)):
        raise RecipientError(f"unknown event(s) {', '.join(unknown)}; one of {', '.join(EVENTS)}")
    recipient_id = None
    if recipient is not None:
        cur = await conn.execute(
            "SELECT id FROM telemetry.recipients WHERE name = %s", (recipient,)
        )
        row = await cur.fetchone()
        if row is None:
            raise RecipientError(f"no recipient named {recipient!r}")
        recipient_id = int(row[0])
    cur = await conn.execute(
        """
        INSERT INTO telemetry.notify_routes
            (recipient_id, role, site, min_severity, kinds, events, min_level, channel)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (
            recipient_id,
            role,
            site,
            min_severity,
            list(kinds) if kinds else None,
            list(events),
            min_level,
            channel,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def known_sites(conn: AsyncConnection[Any]) -> list[str]:
    """Sites the database knows of (recipients, routes, alerts, gateways)."""
    cur = await conn.execute(
        """
        SELECT site FROM telemetry.recipients WHERE site IS NOT NULL
        UNION SELECT site FROM telemetry.notify_routes WHERE site IS NOT NULL
        UNION SELECT site FROM telemetry.alerts WHERE site IS NOT NULL
        UNION SELECT site FROM telemetry.gateways
        """
    )
    return sorted(str(r[0]) for r in await cur.fetchall())


async def required_people(conn: AsyncConnection[Any]) -> dict[str | None, int]:
    """Per site, the largest ``min_recipients`` of the profiles its sensors use."""
    cur = await conn.execute(
        """
        SELECT g.site, max(coalesce((p.spec->>'min_recipients')::int, 1))
          FROM telemetry.sensors s
          JOIN telemetry.gateways g ON g.id = s.gateway_id
          JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id
         GROUP BY g.site
        """
    )
    return {r[0]: int(r[1]) for r in await cur.fetchall()}


async def coverage_gaps_in_db(conn: AsyncConnection[Any]) -> list[CoverageGap]:
    """Route-set gaps against the profiles' ``min_recipients``, per known site and alarm.

    The alarms are ``coldchain.alert_kinds.TWO_PERSON_ALARMS``. A site none of whose
    sensors has a profile requires ``MIN_PEOPLE_ON_LIMIT`` (two).
    """
    sites: list[str | None] = list(await known_sites(conn)) or [None]
    return coverage_gaps(
        await load_routes(conn),
        await load_recipients(conn),
        sites=sites,
        required=await required_people(conn),
    )


async def problems(conn: AsyncConnection[Any], *, limit: int = 100) -> list[dict[str, Any]]:
    """Rows of ``telemetry.notify_problems``, newest first."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT * FROM telemetry.notify_problems ORDER BY at DESC NULLS LAST LIMIT %s", (limit,)
    )
    return list(await cur.fetchall())
