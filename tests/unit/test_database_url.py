"""One database URL for every process; the API's old variable is a deprecated alias."""

from __future__ import annotations

import logging

import pytest

from erp_core.settings import ApiSettings

NEW = "postgresql://coldtrace_app@db-new:5432/coldtrace"
OLD = "postgresql://coldtrace_app@db-old:5432/coldtrace"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLDTRACE_DATABASE_URL", raising=False)
    monkeypatch.delenv("COLDTRACE_API_DATABASE_URL", raising=False)


def test_the_api_reads_the_shared_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", NEW)
    with caplog.at_level(logging.WARNING):
        assert ApiSettings().database_url == NEW
    assert "deprecated" not in caplog.text


def test_the_old_variable_alone_still_works_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COLDTRACE_API_DATABASE_URL", OLD)
    with caplog.at_level(logging.WARNING):
        assert ApiSettings().database_url == OLD
    assert "COLDTRACE_API_DATABASE_URL is deprecated" in caplog.text


def test_when_both_differ_the_shared_one_wins_and_the_log_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", NEW)
    monkeypatch.setenv("COLDTRACE_API_DATABASE_URL", OLD)
    with caplog.at_level(logging.WARNING):
        assert ApiSettings().database_url == NEW
    assert "differs from COLDTRACE_DATABASE_URL, which is used" in caplog.text


def test_an_explicit_value_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", NEW)
    assert ApiSettings(database_url=OLD).database_url == OLD
