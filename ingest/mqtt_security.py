"""Broker credentials and TLS for ingest's and the notifier's paho clients.

Both services log in with an account of their own (``coldtrace devices service``) and,
where the network is not trusted, reach the broker over TLS, verifying its certificate
and host name against a CA file; a client certificate is optional, for brokers that ask
for one. The settings fields are shared (`MqttSecurityFields`), so ingest
(``COLDTRACE_INGEST_MQTT_*``) and the notifier (``COLDTRACE_NOTIFY_MQTT_*``) read the
same names under their own prefix. See docs/mqtt.md.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from pydantic import BaseModel, SecretStr, model_validator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttSecurity:
    """How one client logs in: username/password, and TLS with its CA and client cert."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None  # None with tls: the system's trusted CAs
    cert_file: Path | None = None
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the broker's certificate chain and host name."""
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def apply(self, client: mqtt.Client, host: str) -> None:
        """Set credentials and TLS on a paho client before it connects.

        Raises OSError or ssl.SSLError when the TLS files cannot be used.
        """
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set_context(self.context())
        elif self.password is not None and not _loopback(host):
            log.warning(
                "the MQTT password goes to %s without TLS: anyone on that network can read it",
                host,
            )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class MqttSecurityFields(BaseModel):
    """Settings fields of a service's broker account and TLS (mixed into its settings)."""

    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False  # implied by mqtt_ca_file
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None

    @model_validator(mode="after")
    def _pairs(self) -> MqttSecurityFields:
        if (self.mqtt_username is None) != (self.mqtt_password is None):
            raise ValueError("MQTT_USERNAME and MQTT_PASSWORD go together")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("MQTT_CERT_FILE and MQTT_KEY_FILE go together")
        tls = self.mqtt_tls or self.mqtt_ca_file is not None
        if self.mqtt_cert_file is not None and not tls:
            raise ValueError("a client certificate needs TLS (set MQTT_TLS or MQTT_CA_FILE)")
        return self

    def mqtt_security(self) -> MqttSecurity:
        """The account and TLS settings as the MQTT adapters take them."""
        return MqttSecurity(
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            tls=self.mqtt_tls or self.mqtt_ca_file is not None,
            ca_file=self.mqtt_ca_file,
            cert_file=self.mqtt_cert_file,
            key_file=self.mqtt_key_file,
        )
