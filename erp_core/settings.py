"""API service settings (``COLDTRACE_API_*``), built by the CLI or a test, never at import."""

from __future__ import annotations

import secrets

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from coldtrace.db.settings import DEFAULT_URL


class ApiSettings(BaseSettings):
    """Where the database is and how the API treats it; every field has a working default."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_API_")

    database_url: str = DEFAULT_URL
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # A request waits this long for a free connection before it answers 503.
    pool_timeout_s: float = Field(default=5.0, gt=0)
    # A runaway query (a year of readings without downsampling) must not hold a connection.
    statement_timeout_ms: int = Field(default=15_000, ge=0)
    # A sensor or gateway silent for longer than this is shown as "no recent data".
    stale_after_minutes: float = Field(default=15.0, gt=0)

    # --- access (erp_core.auth) ---
    # Signs the JWT access tokens. Set COLDTRACE_API_JWT_SECRET in production: the default
    # is random per settings object, so tokens die with the process and are not shared.
    jwt_secret: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    jwt_lifetime_minutes: float = Field(default=30.0, gt=0)
    # This many failed logins (or signature passwords) within the window lock the account.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: float = Field(default=15.0, gt=0)
    login_lock_minutes: float = Field(default=15.0, gt=0)

    # --- web UI sessions (erp_core.web.session) ---
    # A web session ends after this long without a page the user asked for (automatic
    # page refreshes do not count); each request restarts the count (sliding time-out).
    web_idle_minutes: float = Field(default=15.0, gt=0)
    # Send the session cookie only over HTTPS. Set it to true behind a TLS proxy; the API
    # itself speaks plain HTTP, so the default keeps the UI usable without one.
    web_cookie_secure: bool = False
