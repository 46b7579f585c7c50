"""Start a Mosquitto of our own, with the project's config, on a free local port.

The demo and the tests use this rather than the system broker, whose Debian defaults
drop queued QoS 1 messages for a slow subscriber. It runs exactly as a plant's broker
should: no anonymous access, a password and an ACL per client from a broker directory
(`coldtrace.devices_store`), and optionally a TLS listener with a certificate of a CA
made for it (`coldtrace.devices_tls`). `Broker` hands out credentials so tests and the
demo need not provision by hand: ``ingest_credentials``, ``notifier_credentials``,
``observer_credentials`` (reads everything), ``gateway_credentials(site, id)`` and
``service_credentials(role, name)`` for a further account of a role.

Every listener replaces the client id a client asks for by its account name
(``use_username_as_clientid``, `LISTENER_SETTINGS`): no account can take another's
client id, and with it the other's connection and persistent session. So an account is
one connection: each ingest worker, notifier or observer connection needs an account
of its own (docs/mqtt.md, "Client ids are account names").
"""

from __future__ import annotations

import getpass
import shutil
import socket
import ssl
import struct
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Self

from coldtrace.devices import Role
from coldtrace.devices_store import ENV_PREFIX, Credentials, DeviceDirectory, service_env
from coldtrace.devices_tls import TlsFiles, ensure_tls

TLS_HOSTS = ["localhost", "127.0.0.1"]  # names the test/demo server certificate is valid for
RELOAD_TIMEOUT_S = 10.0
# Per listener in Mosquitto 2.0 (before any `listener` line it would open a default
# listener on 1883), so it is written after every `listener` line, here and in
# docker-compose.yml: the broker uses the account name as the client id.
LISTENER_SETTINGS = "use_username_as_clientid true\n"


class BrokerError(RuntimeError):
    """Mosquitto could not be started or reloaded."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_config() -> str:
    """The project's Mosquitto settings (without listener and paths)."""
    return resources.files("coldtrace").joinpath("mosquitto.conf").read_text("utf-8")


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connack_code(host: str, port: int, credentials: Credentials | None, timeout: float = 2) -> int:
    """Log in with MQTT 3.1.1 CONNECT and return the CONNACK return code (0 = accepted).

    A readiness probe of its own, so this module needs no MQTT client library. It asks
    for a clean session, and the broker gives it the account's client id: an accepted
    probe cuts off a connected client of that account and discards the account's
    persistent session (what `discard_session` wants; never probe a live worker's account).
    """
    flags = 0x02  # clean session
    payload = _utf8("")
    if credentials is not None:
        flags |= 0xC0
        payload += _utf8(credentials.username) + _utf8(credentials.password)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 10) + payload
    length = bytearray()
    n = len(body)
    while True:
        n, digit = divmod(n, 128)
        length.append(digit | (0x80 if n else 0))
        if not n:
            break
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(bytes([0x10]) + bytes(length) + body)
        reply = sock.recv(4)
        if len(reply) == 4 and reply[0] == 0x20:
            sock.sendall(b"\xe0\x00")
            return reply[3]
    raise BrokerError(f"no CONNACK from {host}:{port} (got {reply!r})")


def discard_session(
    host: str, port: int, credentials: Credentials, *, timeout: float = RELOAD_TIMEOUT_S
) -> None:
    """Log in once as ``credentials`` with a clean session, retrying until ``timeout``.

    The broker then discards the account's persistent session: its subscriptions (a
    retired ingest worker's membership of the shared group) and what it had queued.
    Retries cover a broker that has not yet reloaded the account's new password.
    """
    deadline = time.monotonic() + timeout
    while True:
        code = connack_code(host, port, credentials)
        if code == 0:
            return
        if time.monotonic() >= deadline:
            raise BrokerError(
                f"{host}:{port} did not accept {credentials.username} (CONNACK {code}) within "
                f"{timeout:.0f} s: reload the broker so it reads the new password"
            )
        time.sleep(0.05)


@dataclass
class Broker:
    """A Mosquitto process with its own data and identity directories; may be restarted.

    ``tls_port`` adds a TLS listener whose certificate (for ``localhost`` and
    ``127.0.0.1``) is signed by a CA created in the identity directory on first start.
    """

    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    extra_config: str = ""
    tls_port: int | None = None
    auth_dir: Path | None = None  # default: workdir / "auth"
    process: subprocess.Popen[bytes] | None = None
    _credentials: dict[str, Credentials] = field(default_factory=dict, repr=False)

    @property
    def config_path(self) -> Path:
        """Where the generated config file is written."""
        return self.workdir / "mosquitto.conf"

    @property
    def devices(self) -> DeviceDirectory:
        """The identity directory (password file, ACL, registry, TLS files)."""
        return DeviceDirectory(self.auth_dir or self.workdir / "auth")

    @property
    def tls(self) -> TlsFiles:
        """The CA and server certificate of the TLS listener (created on start)."""
        return ensure_tls(self.devices.path, TLS_HOSTS, now=datetime.now(UTC))

    def write_config(self) -> None:
        """Write the project config plus this run's listeners, identity files and paths."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        devices = self.devices
        devices.ensure_files()
        text = (
            project_config()
            + f"\npassword_file {devices.passwd_path}\n"
            + f"acl_file {devices.acl_path}\n"
            + f"pid_file {devices.pid_path}\n"
            + f"user {getpass.getuser()}\n"  # as root Mosquitto would switch to 'mosquitto'
            + f"persistence_location {self.workdir}/\n"
            + f"log_dest file {self.workdir / 'mosquitto.log'}\n"
            + f"listener {self.port} {self.host}\n"
            + LISTENER_SETTINGS
        )
        if self.tls_port is not None:
            tls = self.tls
            text += (
                f"listener {self.tls_port} {self.host}\n"
                + LISTENER_SETTINGS
                + f"cafile {tls.ca_cert}\ncertfile {tls.server_cert}\nkeyfile {tls.server_key}\n"
                "tls_version tlsv1.2\n"
            )
        self.config_path.write_text(text + self.extra_config + "\n")

    def service_credentials(self, role: Role, name: str | None = None) -> Credentials:
        """Account ``name`` (default: the role's name) of a service role, made on first use.

        One account is one connection: a second ingest worker, or a second observer
        connection, asks for a second name (``ingest-2``), all ingest accounts in the same
        secret share group.
        """
        name = name or str(role)
        if name not in self._credentials:
            exists = self.devices.active(name) is not None
            self._credentials[name] = self.devices.provision_service(role, name, rotate=exists)
            self._reload_until(self._credentials[name], accepted=True)
        return self._credentials[name]

    @property
    def ingest_credentials(self) -> Credentials:
        """The first ingest worker's identity (reads gateways' topics, publishes acks)."""
        return self.service_credentials(Role.INGEST)

    @property
    def notifier_credentials(self) -> Credentials:
        """The notifier's identity (publishes alert events)."""
        return self.service_credentials(Role.NOTIFIER)

    @property
    def observer_credentials(self) -> Credentials:
        """An identity that may read every topic and write none (tests, monitoring)."""
        return self.service_credentials(Role.OBSERVER)

    def service_env(self, role: Role, name: str | None = None) -> dict[str, str]:
        """Environment of a ``coldtrace ingest`` or ``notifier`` process on this broker.

        It logs in as account ``name`` (default: the role's name).
        """
        prefix = ENV_PREFIX[role]
        return {
            f"{prefix}_MQTT_HOST": self.host,
            f"{prefix}_MQTT_PORT": str(self.port),
            **service_env(role, self.service_credentials(role, name)),
        }

    def gateway_credentials(self, site: str, gateway: str) -> Credentials:
        """A gateway's identity, provisioned on first use (the broker reloads if running)."""
        if gateway not in self._credentials:
            active = self.devices.active(gateway)
            rotate = active is not None and active.role is Role.GATEWAY and active.site == site
            creds = self.devices.provision_gateway(site, gateway, rotate=rotate)
            self._credentials[gateway] = creds
            self._reload_until(creds, accepted=True)
        return self._credentials[gateway]

    def revoke(self, name: str, *, end_session: bool = False) -> None:
        """Revoke ``name`` and reload: a connected client of it is cut off at once.

        ``end_session`` first discards the account's persistent session (a retired ingest
        worker's share of the group), as ``coldtrace devices revoke --end-session`` does.
        """
        creds = self._credentials.pop(name, None)
        if end_session:
            if self.process is None:
                raise BrokerError("the broker must run to end a session")
            creds = self.devices.session_login(name)
            self.reload()
            discard_session(self.host, self.port, creds)
        self.devices.revoke(name)
        if creds is not None:
            self._reload_until(creds, accepted=False)
        else:
            self.reload()

    def reload(self) -> None:
        """Make the running broker read its identity files again (SIGHUP)."""
        if self.process is not None and self.devices.reload_broker() is None:
            raise BrokerError("the broker's pid file names no running process")

    def _reload_until(self, credentials: Credentials, *, accepted: bool) -> None:
        """Reload, then wait until ``credentials`` log in (or are refused) as wanted."""
        if self.process is None:
            return
        self.reload()
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            if (connack_code(self.host, self.port, credentials) == 0) == accepted:
                return
            time.sleep(0.02)
        raise BrokerError(f"the broker did not apply the change for {credentials.username}")

    def ssl_context(self, ca_file: Path | None = None) -> ssl.SSLContext:
        """A client TLS context that trusts ``ca_file`` (default: this broker's CA)."""
        return ssl.create_default_context(cafile=str(ca_file or self.tls.ca_cert))

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and wait until it accepts connections."""
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(exe).exists():
            raise BrokerError("mosquitto is not installed (Debian package 'mosquitto')")
        self.write_config()
        self.process = subprocess.Popen(  # noqa: S603 - fixed executable, our own config
            [exe, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl-C is for its owner, who stops it last
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise BrokerError(f"mosquitto exited with {self.process.returncode}: {err}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} in {timeout} s")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the broker (SIGTERM saves its persistence file; ``kill`` does not)."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
