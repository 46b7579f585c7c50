"""``coldtrace dashboards push``: put the datasource, folder and dashboards into a Grafana.

For a Grafana that is not provisioned from ``dashboards/provisioning`` (one run by
another team, or Grafana Cloud). Idempotent: each object is read first and written only
when it differs from what the code defines; a second run writes nothing and says so.
The datasource's password is write-only in Grafana's API, so it is sent when the
datasource is created or has none, never compared (rotate it in Grafana, or delete the
datasource and push again). Errors of the API become ``PushError`` with the step that
failed; a refused token says so plainly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

from dashboards.build import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    all_dashboards,
)
from dashboards.generate import dashboard_json

NOT_FOUND = 404
# What Grafana adds to a stored dashboard; not part of what the code defines.
_STORED_ONLY = ("id", "version")


class PushError(Exception):
    """A push step Grafana refused; ``step`` names it."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass(frozen=True, slots=True)
class Database:
    """How Grafana reaches PostgreSQL: ``host:port``, database, the reader's login."""

    host: str
    database: str
    user: str
    password: str | None
    timescaledb: bool = True
    sslmode: str = "disable"


@dataclass(slots=True)
class Report:
    """What a push changed: one line per object, ``created``/``updated``/``unchanged``."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, outcome: str) -> None:
        """Note one object's outcome."""
        self.lines.append((what, outcome))

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return any(outcome != "unchanged" for _, outcome in self.lines)


def datasource_body(db: Database) -> dict[str, Any]:
    """The datasource as Grafana's API takes it (same as dashboards/provisioning)."""
    return {
        "name": "ColdTrace",
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": db.host,
        "user": db.user,
        "jsonData": {
            "database": db.database,
            "sslmode": db.sslmode,
            "postgresVersion": 1500,
            "timescaledb": db.timescaledb,
        },
    }


def _call(step: str, fn: Callable[[], Any]) -> Any:
    """Run one API call; Grafana's errors become ``PushError``, 404 becomes None."""
    try:
        return fn()
    except GrafanaUnauthorizedError as err:
        raise PushError(
            step, f"Grafana refused the token ({err.status_code}): {err.message}"
        ) from err
    except GrafanaClientError as err:
        if err.status_code == NOT_FOUND:
            return None
        if err.status_code == 403:
            raise PushError(step, f"the token may not do this (403): {err.message}") from err
        raise PushError(step, f"{err.status_code}: {err.message}") from err
    except GrafanaException as err:
        raise PushError(step, str(err)) from err


def _push_datasource(api: GrafanaApi, db: Database, report: Report) -> None:
    want = datasource_body(db)
    have = _call("read datasource", lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID))
    body = dict(want)
    if have is None:
        if db.password is not None:
            body["secureJsonData"] = {"password": db.password}
        _call("create datasource", lambda: api.datasource.create_datasource(body))
        report.add("datasource ColdTrace", "created")
        return
    has_password = bool((have.get("secureJsonFields") or {}).get("password"))
    same = all(have.get(k) == v for k, v in want.items() if k != "jsonData") and all(
        (have.get("jsonData") or {}).get(k) == v for k, v in want["jsonData"].items()
    )
    if same and (has_password or db.password is None):
        report.add("datasource ColdTrace", "unchanged")
        return
    if not has_password and db.password is not None:
        body["secureJsonData"] = {"password": db.password}
    _call(
        "update datasource", lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, body)
    )
    report.add("datasource ColdTrace", "updated")


def _push_folder(api: GrafanaApi, report: Report) -> None:
    have = _call("read folder", lambda: api.folder.get_folder(FOLDER_UID))
    if have is None:
        _call("create folder", lambda: api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID))
        report.add(f"folder {FOLDER_TITLE}", "created")
    elif have.get("title") != FOLDER_TITLE:
        _call(
            "update folder",
            lambda: api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True),
        )
        report.add(f"folder {FOLDER_TITLE}", "updated")
    else:
        report.add(f"folder {FOLDER_TITLE}", "unchanged")


def _push_dashboard(api: GrafanaApi, want: dict[str, Any], report: Report) -> None:
    uid = str(want["uid"])
    have = _call(f"read dashboard {uid}", lambda: api.dashboard.get_dashboard(uid))
    if have is not None:
        stored = {k: v for k, v in have.get("dashboard", {}).items() if k not in _STORED_ONLY}
        if stored == want and have.get("meta", {}).get("folderUid") == FOLDER_UID:
            report.add(f"dashboard {uid}", "unchanged")
            return
    body = {
        "dashboard": want,
        "folderUid": FOLDER_UID,
        "overwrite": True,
        "message": "coldtrace dashboards push",
    }
    _call(f"save dashboard {uid}", lambda: api.dashboard.update_dashboard(body))
    report.add(f"dashboard {uid}", "created" if have is None else "updated")


def push(api: GrafanaApi, *, database: Database) -> Report:
    """Create or update the datasource, the folder and every dashboard; what changed."""
    report = Report()
    _push_datasource(api, database, report)
    _push_folder(api, report)
    for dashboard in all_dashboards().values():
        _push_dashboard(api, dashboard_json(dashboard), report)
    return report


def connect(url: str, token: str, *, timeout_s: float = 10.0) -> GrafanaApi:
    """A client of the Grafana at ``url`` with a service-account ``token``."""
    return GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
