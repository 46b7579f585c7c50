"""HTML of a lot's deviations, shown on the lot page (``erp_core.release.pages``). Pure."""

from __future__ import annotations

from typing import Any

from erp_core.web.format import format_time
from erp_core.web.html import Html, join, render


def deviations_table(devs: list[dict[str, Any]]) -> Html:
    """The lot's deviations (``service.deviations_for``) as a table, or a line saying none."""
    if not devs:
        return Html("<p>No deviation.</p>")
    rows = join(
        render(
            "<tr><td>{number}</td><td>{title}</td><td>{status}</td><td>{disp}</td>"
            "<td>{opened}</td></tr>",
            number=d["number"],
            title=d["title"],
            status=d["status"].upper(),
            disp=d["disposition"] or "–",
            opened=format_time(d["opened_at"]),
        )
        for d in devs
    )
    return render(
        "<table><thead><tr><th>Deviation</th><th>What</th><th>Status</th><th>Disposition</th>"
        "<th>Opened (UTC)</th></tr></thead><tbody>{rows}</tbody></table>",
        rows=rows,
    )
