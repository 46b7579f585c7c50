"""Notifier settings (``COLDTRACE_NOTIFY_*``), built by the CLI, never at import."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.mqtt_security import MqttSecurityFields


class NotifySettings(BaseSettings, MqttSecurityFields):
    """Where messages go, how often the notifier looks, and how hard it retries."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_NOTIFY_")

    worker: str = "notifier-1"
    base_url: str = "http://127.0.0.1:8000"
    # Site id → IANA time zone, e.g. {"plant-1": "Europe/Berlin"}; messages show local time.
    site_timezones: dict[str, str] = Field(default_factory=dict)

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "coldtrace@localhost"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    # SMS/voice provider: JSON POST {"to", "text", "kind": "sms"|"voice", "ref"}.
    sms_url: str | None = None
    voice_url: str | None = None
    provider_token: str | None = None

    # The MQTT channel; credentials and TLS: the MQTT_* fields of MqttSecurityFields.
    mqtt_host: str | None = None
    mqtt_port: int = 1883
    mqtt_client_id: str = "coldtrace-notifier-1"

    poll_interval_s: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=50, ge=1)
    send_timeout_s: float = Field(default=20.0, gt=0)
    # A claim outlives the longest send; a notifier killed mid-send is retried after it.
    lease_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=5.0, ge=0)
    backoff_cap_s: float = Field(default=900.0, ge=0)
    # The alert lifecycle's periodic jobs (escalation, offline/calibration sweep).
    run_alert_jobs: bool = True
    jobs_interval_s: float = Field(default=60.0, gt=0)
    escalate_after_minutes: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlives_send(self) -> NotifySettings:
        if self.lease_s <= self.send_timeout_s:
            raise ValueError("lease_s must be longer than send_timeout_s")
        return self
