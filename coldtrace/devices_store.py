"""The broker's identity files in one directory: registry, password file, ACL, audit log.

``coldtrace devices`` and `coldtrace.broker` keep everything the broker needs to know
about clients in one directory (``COLDTRACE_BROKER_DIR``):

| file | mode | what |
|---|---|---|
| ``identities.json`` | 0600 | every account: role, site, password hash, when created / revoked |
| ``passwd`` | 0600 | Mosquitto ``password_file``, generated from the registry |
| ``acl`` | 0644 | Mosquitto ``acl_file``, generated from the registry (no secrets) |
| ``devices.log`` | 0644 | append-only: who provisioned, rotated or revoked what, when |
| ``ca.crt``, ``server.crt`` | 0644 | the TLS listener's CA and certificate |
| ``ca.key``, ``server.key`` | 0600 | their keys (`coldtrace.devices_tls`) |

Passwords are never stored, only their hashes: a new password is returned once, to be
put in the gateway's config or the service's environment.

The ingest account also gets the name of the workers' shared-subscription group, a
random secret kept in the registry (it survives a password rotation and is the same
for every ingest account): Mosquitto grants any subscription and checks reading only on
delivery, and a message handed to a group member that may not read it is dropped for
the whole group — so a gateway that joined a *known* group (``$share/ingest``) made the
broker discard its share of every gateway's messages (docs/mqtt.md). Files are replaced
atomically (write, fsync, rename), so the broker never reads half a file. The broker
reads them again on SIGHUP (`reload_broker`); Mosquitto then drops every connected
client whose account is gone, so a revocation takes effect at once.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coldtrace.devices import (
    SERVICE_ROLES,
    DeviceError,
    Identity,
    Role,
    check_username,
    hash_password,
    new_password,
    render_acl,
    render_passwd,
)

REGISTRY = "identities.json"
PASSWD = "passwd"  # noqa: S105 - the name of the password file
ACL = "acl"
AUDIT_LOG = "devices.log"
PID_FILE = "mosquitto.pid"
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and its password, as handed out once; the password never shows in repr.

    ``share_group``: for ingest, the secret name of the workers' shared subscription.
    """

    username: str
    password: str = field(repr=False)
    share_group: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Entry:
    """A registry entry: the identity and its history."""

    identity: Identity
    created: str
    revoked: str | None = None
    share_group: str | None = None  # ingest: the secret shared-subscription group


def write_file(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` atomically with ``text``, created with ``mode`` from the start."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it  # noqa: PTH101
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _entry(name: str, data: dict[str, Any]) -> Entry:
    identity = Identity(
        username=name,
        role=Role(data["role"]),
        password_hash=str(data["hash"]),
        site=data.get("site"),
    )
    return Entry(identity, str(data["created"]), data.get("revoked"), data.get("share_group"))


class DeviceDirectory:
    """The broker's identity files in ``path``; every change rewrites passwd and ACL."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def passwd_path(self) -> Path:
        """Mosquitto's ``password_file``."""
        return self.path / PASSWD

    @property
    def acl_path(self) -> Path:
        """Mosquitto's ``acl_file``."""
        return self.path / ACL

    @property
    def pid_path(self) -> Path:
        """Where a broker started by `coldtrace.broker` writes its pid."""
        return self.path / PID_FILE

    def _load(self) -> dict[str, Entry]:
        registry = self.path / REGISTRY
        if not registry.exists():
            return {}
        try:
            data = json.loads(registry.read_text("utf-8"))
            return {name: _entry(name, e) for name, e in data["identities"].items()}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DeviceError(f"{registry}: cannot read the identity registry: {err}") from err

    def _save(self, entries: dict[str, Entry]) -> None:
        self.path.mkdir(mode=0o750, parents=True, exist_ok=True)
        data = {
            "version": 1,
            "identities": {
                name: {
                    "role": str(e.identity.role),
                    "site": e.identity.site,
                    "hash": e.identity.password_hash,
                    "created": e.created,
                    "revoked": e.revoked,
                    **({"share_group": e.share_group} if e.share_group else {}),
                }
                for name, e in sorted(entries.items())
            },
        }
        write_file(self.path / REGISTRY, json.dumps(data, indent=2) + "\n", SECRET_MODE)
        active = [e.identity for e in entries.values() if e.revoked is None]
        write_file(self.passwd_path, render_passwd(active), SECRET_MODE)
        write_file(self.acl_path, render_acl(active), PUBLIC_MODE)

    def _log(self, action: str, name: str, detail: str = "") -> None:
        line = f"{_now()} {getpass.getuser()} {action} {name}{' ' + detail if detail else ''}\n"
        fd = os.open(self.path / AUDIT_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PUBLIC_MODE)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(line)

    def entries(self) -> list[Entry]:
        """Every account ever provisioned, revoked ones included."""
        return [e for _, e in sorted(self._load().items())]

    def active(self, name: str) -> Identity | None:
        """The active identity called ``name``, or None."""
        entry = self._load().get(name)
        return entry.identity if entry is not None and entry.revoked is None else None

    def ensure_files(self) -> None:
        """Write passwd and ACL from the registry (an empty pair when there is none yet)."""
        self._save(self._load())

    def provision_gateway(self, site: str, gateway: str, *, rotate: bool = False) -> Credentials:
        """Create (or with ``rotate`` replace) a gateway's password; return it, once."""
        return self._provision(gateway, Role.GATEWAY, site, rotate=rotate)

    def provision_service(self, role: Role, name: str, *, rotate: bool = False) -> Credentials:
        """Create (or with ``rotate`` replace) a service identity (ingest, notifier, observer)."""
        if role not in SERVICE_ROLES:
            raise DeviceError(f"{role} is not a service role ({', '.join(SERVICE_ROLES)})")
        return self._provision(name, role, None, rotate=rotate)

    def session_login(self, name: str) -> Credentials:
        """A new password for account ``name``, active or revoked, to log in once as it.

        For ending the account's persistent session in the broker (`coldtrace devices
        revoke --end-session`): a revoked account is active again until the next revoke.
        """
        entry = self._load().get(name)
        if entry is None:
            raise DeviceError(f"{name!r} was never provisioned (see `coldtrace devices list`)")
        identity = entry.identity
        return self._provision(name, identity.role, identity.site, rotate=True)

    def _provision(self, name: str, role: Role, site: str | None, *, rotate: bool) -> Credentials:
        check_username(name)
        entries = self._load()
        old = entries.get(name)
        if old is not None and old.revoked is None:
            same = old.identity.role is role and old.identity.site == site
            if not same:
                where = f" of site {old.identity.site}" if old.identity.site else ""
                raise DeviceError(
                    f"{name!r} is already the {old.identity.role} identity{where}; "
                    "ids are unique across sites and roles (revoke it first to reuse the name)"
                )
            if not rotate:
                raise DeviceError(
                    f"{name!r} is already provisioned; pass --rotate to give it a new password "
                    "(the old one stops working at the next broker reload)"
                )
        password = new_password()
        identity = Identity(name, role, hash_password(password), site)
        group = _share_group(entries) if role is Role.INGEST else None
        entries[name] = Entry(identity, _now(), share_group=group)
        self._save(entries)
        action = "rotate" if old is not None and old.revoked is None else "provision"
        self._log(action, name, f"role={role}" + (f" site={site}" if site else ""))
        return Credentials(name, password, group)

    def revoke(self, name: str) -> Identity:
        """Remove ``name``'s access (kept in the registry as revoked); return the identity."""
        entries = self._load()
        entry = entries.get(name)
        if entry is None or entry.revoked is not None:
            raise DeviceError(f"{name!r} is not an active identity (see `coldtrace devices list`)")
        entries[name] = Entry(entry.identity, entry.created, _now(), entry.share_group)
        self._save(entries)
        self._log("revoke", name, f"role={entry.identity.role}")
        return entry.identity

    def reload_broker(self, pid_file: Path | None = None) -> int | None:
        """Send SIGHUP to the broker whose pid is in ``pid_file``; return the pid, or None.

        None means no pid file or no such process (a broker in a container or under
        systemd is reloaded the way docs/mqtt.md says).
        """
        path = pid_file or self.pid_path
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return None
        except PermissionError as err:
            raise DeviceError(f"may not signal the broker (pid {pid} from {path}): {err}") from err
        return pid


def _share_group(entries: dict[str, Entry]) -> str:
    """The ingest workers' group: the one an ingest account already has, else a new one."""
    for entry in entries.values():
        if entry.identity.role is Role.INGEST and entry.share_group:
            return entry.share_group
    return f"ingest-{secrets.token_hex(16)}"


ENV_PREFIX = {Role.INGEST: "COLDTRACE_INGEST", Role.NOTIFIER: "COLDTRACE_NOTIFY"}


def service_env(role: Role, credentials: Credentials) -> dict[str, str]:
    """The environment variables that give a service (ingest, notifier) its broker login."""
    prefix = ENV_PREFIX.get(role)
    if prefix is None:
        raise DeviceError(f"{role} is not run by a ColdTrace service with environment settings")
    env = {
        f"{prefix}_MQTT_USERNAME": credentials.username,
        f"{prefix}_MQTT_PASSWORD": credentials.password,
    }
    if credentials.share_group:
        env[f"{prefix}_SHARE_GROUP"] = credentials.share_group
    return env
