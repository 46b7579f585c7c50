"""docker-compose runs no ColdTrace service as the database superuser or the owner, and
keeps no password in the repository (they come from the environment)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DATASOURCE = yaml.safe_load(
    (ROOT / "dashboards/provisioning/datasources/coldtrace.yaml").read_text()
)
FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Z_]+:\?[^}]*\}$")


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (COMPOSE["services"][service].get("environment") or {}).items()}


def test_services_log_in_as_the_application_role() -> None:
    for name in ("ingest", "api", "notifier", "erp-jobs"):
        e = env(name)
        assert e["COLDTRACE_DATABASE_URL"].startswith("postgresql://coldtrace_app@"), name
        assert "COLDTRACE_API_DATABASE_URL" not in e, name  # deprecated: one URL for all
        assert FROM_ENVIRONMENT.match(e["PGPASSWORD"]), name
        assert "COLDTRACE_DB_APP_PASSWORD" in e["PGPASSWORD"]
    migrate = env("migrate")
    assert migrate["COLDTRACE_DATABASE_OWNER_URL"].startswith("postgresql://coldtrace@")
    assert "COLDTRACE_DB_OWNER_PASSWORD" in migrate["PGPASSWORD"]


def test_grafana_reads_as_the_reader_role() -> None:
    (source,) = DATASOURCE["datasources"]
    assert source["user"] == "coldtrace_reader"
    assert source["secureJsonData"]["password"] == "$COLDTRACE_DB_READER_PASSWORD"
    assert FROM_ENVIRONMENT.match(env("grafana")["COLDTRACE_DB_READER_PASSWORD"])


def test_no_password_is_written_in_the_compose_file() -> None:
    for name, service in COMPOSE["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            assert not re.search(r"://[^/@:]+:[^/@]+@", text), (name, key)  # user:pw@ in a URL
            if "PASSWORD" in key:
                assert FROM_ENVIRONMENT.match(text), (name, key)
