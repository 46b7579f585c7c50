"""API service settings (``COLDTRACE_API_*``), built by the CLI or a test, never at import.

``create_app`` refuses settings that would be unsafe to serve (``require_safe``): no JWT
secret, or one shorter than ``MIN_JWT_SECRET_BYTES``. Tests and the demo pass a secret
explicitly; there is no default one.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.settings import URL_ENV, url_from_env, warn_deprecated_url
from erp_core.web.format import SITE_TIMEZONE_ENV, parse_zone

JWT_SECRET_ENV = "COLDTRACE_API_JWT_SECRET"  # noqa: S105 - the name of the variable
# HS256 keys shorter than the hash output (32 bytes) weaken the MAC (RFC 7518 §3.2).
MIN_JWT_SECRET_BYTES = 32


class UnsafeSettingsError(ValueError):
    """Settings the API must not start with; the message names the variable to set."""


def _default_hash_slots() -> int:
    # One argon2 check takes one core for ~160 ms: sign-ins get half the cores, at least 1.
    return max(1, (os.cpu_count() or 2) // 2)


class ApiSettings(BaseSettings):
    """Where the database is and how the API treats it."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_API_", populate_by_name=True)

    # Every process reads COLDTRACE_DATABASE_URL (db.settings); the API's old variable
    # COLDTRACE_API_DATABASE_URL is still read when it is the only one, with a warning.
    database_url: str = Field(default_factory=url_from_env, validation_alias=URL_ENV)
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # A request waits this long for a free connection before it answers 503.
    pool_timeout_s: float = Field(default=5.0, gt=0)
    # A runaway query (a year of readings without downsampling) must not hold a connection.
    statement_timeout_ms: int = Field(default=15_000, ge=0)
    # A sensor or gateway silent for longer than this is shown as "no recent data".
    stale_after_minutes: float = Field(default=15.0, gt=0)

    # --- access (erp_core.auth) ---
    # Signs the JWT access tokens and web sessions: required, at least 32 bytes, the same
    # for every API process of a site (``openssl rand -base64 48``).
    jwt_secret: SecretStr | None = None
    jwt_lifetime_minutes: float = Field(default=30.0, gt=0)
    # This many failed logins (or signature passwords) of one user from one address
    # within the window lock that user at that address.
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: float = Field(default=15.0, gt=0)
    login_lock_minutes: float = Field(default=15.0, gt=0)
    # This many failures or refusals from one address, whatever the user names, within
    # the window refuse every sign-in from it for the lock time.
    login_source_max_failures: int = Field(default=20, ge=1)
    # This many failures of one user from anywhere within the window lock that user for
    # every address it has not signed in from within LOGIN_KNOWN_SOURCE_DAYS.
    login_account_max_failures: int = Field(default=50, ge=1)
    login_known_source_days: float = Field(default=30.0, gt=0)
    # A temporary password set by an administrator's reset is refused after this long.
    temporary_password_hours: float = Field(default=72.0, gt=0)
    # Password checks (argon2, one core each) running at once, and how long a sign-in
    # waits for one before it gets 503; pooled connections sign-ins may use at once.
    login_hash_concurrency: int = Field(default_factory=_default_hash_slots, ge=1)
    login_queue_timeout_s: float = Field(default=10.0, gt=0)
    login_db_concurrency: int = Field(default=2, ge=1)

    # --- HTTP hardening (erp_core.hardening) ---
    # Request bodies larger than this are refused with 413 before anything reads them.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Addresses (or networks, e.g. 10.0.0.0/24) of reverse proxies whose X-Forwarded-For
    # and X-Forwarded-Proto are believed; comma-separated. Empty: none (the default).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- web UI sessions (erp_core.web.session) ---
    # A web session ends after this long without a page the user asked for (automatic
    # page refreshes do not count); each request restarts the count (sliding time-out).
    web_idle_minutes: float = Field(default=15.0, gt=0)
    # Cookies are Secure whenever the request came over HTTPS (directly or through a
    # trusted proxy). Set this to true to make them Secure always, e.g. behind a TLS
    # proxy that is not listed in TRUSTED_PROXIES.
    web_cookie_secure: bool = False

    # --- the site (erp_core.web.format) ---
    # The time zone pages and PDF reports show times in: an IANA name (Asia/Shanghai),
    # read from COLDTRACE_SITE_TIMEZONE (no API prefix: reports and the CLI read it too).
    # A name that is no zone stops the start with an error naming the variable.
    site_timezone: str = Field(default="UTC", validation_alias=SITE_TIMEZONE_ENV)

    @field_validator("site_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return str(parse_zone(value).key)

    @model_validator(mode="after")
    def _warn_deprecated(self) -> ApiSettings:
        warn_deprecated_url()
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def jwt_key(self) -> str:
        """The JWT secret; UnsafeSettingsError if it is missing or too short."""
        if self.jwt_secret is None or not self.jwt_secret.get_secret_value():
            raise UnsafeSettingsError(
                f"{JWT_SECRET_ENV} is not set: it signs every access token and web session. "
                f"Set it to a random value of at least {MIN_JWT_SECRET_BYTES} bytes, the same "
                "for every API process (e.g. `openssl rand -base64 48`)."
            )
        key = self.jwt_secret.get_secret_value()
        if len(key.encode()) < MIN_JWT_SECRET_BYTES:
            raise UnsafeSettingsError(
                f"{JWT_SECRET_ENV} is {len(key.encode())} bytes long; it must be at least "
                f"{MIN_JWT_SECRET_BYTES} random bytes (e.g. `openssl rand -base64 48`)."
            )
        return key


def require_safe(settings: ApiSettings) -> None:
    """UnsafeSettingsError naming the variable if ``settings`` must not be served."""
    settings.jwt_key()
