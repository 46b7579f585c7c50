"""``coldtrace dashboards push`` against a local HTTP server that plays Grafana's API.

The server keeps datasources, folders and dashboards in memory the way Grafana's HTTP
API does (the endpoints grafana-client calls), records every request and refuses any
request without the right bearer token with 401, as Grafana does.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from coldtrace.cli import app

TOKEN = "glsa_test_token"


class FakeGrafana(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str, Any]] = []
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m != "GET"]


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.server.requests.append((self.command, self.path, body))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"message": "invalid API key"})
            return
        g, parts = self.server, self.path.strip("/").split("/")
        match (self.command, parts):
            case ("GET", ["api", "datasources", "uid", uid]):
                ds = g.datasources.get(uid)
                self._reply(200, ds) if ds else self._reply(404, {"message": "not found"})
            case ("POST", ["api", "datasources"]):
                stored = {k: v for k, v in body.items() if k != "secureJsonData"}
                stored["secureJsonFields"] = dict.fromkeys(body.get("secureJsonData", {}), True)
                g.datasources[body["uid"]] = stored
                self._reply(200, {"message": "Datasource added", "datasource": stored})
            case ("PUT", ["api", "datasources", "uid", uid]):
                g.datasources[uid].update({k: v for k, v in body.items() if k != "secureJsonData"})
                self._reply(200, {"message": "Datasource updated"})
            case ("GET", ["api", "folders", uid]):
                f = g.folders.get(uid)
                self._reply(200, f) if f else self._reply(404, {"message": "folder not found"})
            case ("POST", ["api", "folders"]):
                g.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"], "version": 1}
                self._reply(200, g.folders[body["uid"]])
            case ("GET", ["api", "dashboards", "uid", uid]):
                d = g.dashboards.get(uid)
                self._reply(200, d) if d else self._reply(404, {"message": "Dashboard not found"})
            case ("POST", ["api", "dashboards", "db"]):
                dash = body["dashboard"]
                old = g.dashboards.get(dash["uid"])
                version = old["dashboard"]["version"] + 1 if old else 1
                stored = {**dash, "id": 7, "version": version}
                g.dashboards[dash["uid"]] = {
                    "dashboard": stored,
                    "meta": {"folderUid": body["folderUid"]},
                }
                self._reply(200, {"status": "success", "uid": dash["uid"], "version": version})
            case _:
                self._reply(404, {"message": f"no route {self.command} {self.path}"})

    do_GET = do_POST = do_PUT = _handle  # noqa: N815 - http.server's method names


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _push(grafana: FakeGrafana, token: str = TOKEN) -> Any:
    return CliRunner().invoke(
        app,
        ["dashboards", "push", "--url", grafana.url, "--token", token],
        env={"COLDTRACE_DB_READER_PASSWORD": "reader-secret"},
    )


def test_push_creates_everything_then_changes_nothing(grafana: FakeGrafana) -> None:
    first = _push(grafana)
    assert first.exit_code == 0, first.output
    assert "pushed." in first.output
    ds = grafana.datasources["coldtrace-pg"]
    assert ds["type"] == "grafana-postgresql-datasource"
    assert ds["user"] == "coldtrace_reader"
    assert ds["secureJsonFields"] == {"password": True}
    sent = next(b for m, p, b in grafana.requests if (m, p) == ("POST", "/api/datasources"))
    assert sent["secureJsonData"] == {"password": "reader-secret"}
    assert grafana.folders["coldtrace"]["title"] == "ColdTrace"
    assert set(grafana.dashboards) == {
        "coldtrace-overview",
        "coldtrace-location",
        "coldtrace-batch",
        "coldtrace-shipments",
        "coldtrace-fleet",
    }
    assert all(d["meta"]["folderUid"] == "coldtrace" for d in grafana.dashboards.values())
    assert len(grafana.writes()) == 7  # datasource, folder, five dashboards

    grafana.requests.clear()
    second = _push(grafana)
    assert second.exit_code == 0, second.output
    assert grafana.writes() == [], "a second push must not write"
    assert "nothing changed" in second.output
    assert second.output.count(": unchanged") == 7


def test_push_updates_only_what_differs(grafana: FakeGrafana) -> None:
    assert _push(grafana).exit_code == 0
    grafana.dashboards["coldtrace-batch"]["dashboard"]["title"] = "edited by hand"
    grafana.requests.clear()
    result = _push(grafana)
    assert result.exit_code == 0, result.output
    assert grafana.writes() == [("POST", "/api/dashboards/db")]
    assert "dashboard coldtrace-batch: updated" in result.output
    assert grafana.dashboards["coldtrace-batch"]["dashboard"]["title"] == "批次 · Batch"


def test_a_bad_token_is_a_clear_error(grafana: FakeGrafana) -> None:
    result = _push(grafana, token="wrong")
    assert result.exit_code == 1
    assert "refused the token (401)" in result.output
    assert grafana.writes() == []
