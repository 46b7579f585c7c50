"""Every SQL text a dashboard's JSON sends to the data source, and where it sits.

Panels' targets, SQL annotations and query variables: what Grafana runs, read from the
JSON itself (generated or not), so a test can run exactly what Grafana would.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SqlTarget:
    """One SQL text of a dashboard: where it is, the text and its result format."""

    where: str
    sql: str
    format: str


def sql_targets(dashboard: Mapping[str, Any]) -> Iterator[SqlTarget]:
    """Every raw SQL the dashboard runs, panels first, then annotations and variables."""
    title = dashboard.get("title", "?")
    for panel in dashboard.get("panels", []):
        for target in panel.get("targets", []):
            if "rawSql" in target:
                where = f"{title} / {panel.get('title')} / {target.get('refId')}"
                yield SqlTarget(where, target["rawSql"], target.get("format", "time_series"))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        if "rawSql" in target:
            yield SqlTarget(
                f"{title} / annotation {annotation.get('name')}", target["rawSql"], "table"
            )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and isinstance(variable.get("query"), str):
            yield SqlTarget(f"{title} / variable {variable['name']}", variable["query"], "table")
