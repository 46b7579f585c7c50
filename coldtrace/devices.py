"""Device identity for the broker, pure: who may connect, and which topics each may use.

Every MQTT client of ColdTrace connects with a username and password of its own, and the
broker confines each to the topics its role needs (docs/mqtt.md):

- a **gateway** publishes only ``ct/v1/{site}/{gateway}/{readings,tags,scans,state}``
  and reads only its own ``…/ack/#`` and the site's alert events;
- **ingest** reads what gateways publish and is the only one that may publish acks;
- the **notifier** only publishes alert events, ``ct/v1/{site}/alerts``;
- an **observer** (monitoring, tests, the demo's screen) reads everything, writes nothing.

This module turns the list of identities into Mosquitto's password file and ACL file
(plain text a plant's IT can read and audit) and hashes passwords the way
``mosquitto_passwd`` does, so provisioning needs no Mosquitto tools on the machine.
Reading and writing the files is `coldtrace.devices_store`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from telemetry.topics import PREFIX, Kind, TopicError, check_id

__all__ = [
    "DeviceError",
    "Identity",
    "Role",
    "acl_rules",
    "check_password",
    "check_username",
    "hash_password",
    "new_password",
    "render_acl",
    "render_passwd",
]

# PBKDF2-SHA512 as mosquitto_passwd writes it ($7$). Passwords are 256-bit random
# tokens, so the iteration count adds little; the broker pays it on every CONNECT.
HASH_ITERATIONS = 1000
SALT_BYTES = 12
_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class DeviceError(Exception):
    """Root of the errors of device provisioning; the message says what to do."""


class Role(StrEnum):
    """What an identity is for; the role decides its topics."""

    GATEWAY = "gateway"
    INGEST = "ingest"
    NOTIFIER = "notifier"
    OBSERVER = "observer"


SERVICE_ROLES = (Role.INGEST, Role.NOTIFIER, Role.OBSERVER)
GATEWAY_KINDS = (Kind.READINGS, Kind.TAGS, Kind.SCANS, Kind.STATE)


@dataclass(frozen=True, slots=True)
class Identity:
    """One broker account: its username, role, (for a gateway) its site, and password hash."""

    username: str
    role: Role
    password_hash: str
    site: str | None = None  # gateways only

    def __post_init__(self) -> None:
        check_username(self.username)
        if (self.role is Role.GATEWAY) != (self.site is not None):
            raise DeviceError(f"{self.username}: a site is given for gateways, and only for them")
        if self.site is not None:
            _checked_id(self.site, "site")


def _checked_id(value: str, what: str) -> str:
    try:
        return check_id(value, what)
    except TopicError as err:
        raise DeviceError(str(err)) from err


def check_username(name: str) -> str:
    """Return ``name`` if it can be a broker username (and a topic level), else raise.

    A gateway's username is its gateway id, which the topic scheme allows to contain
    ``:``; Mosquitto's password file separates user and hash with ``:``, so it is refused.
    """
    if ":" in name:
        raise DeviceError(
            f"{name!r} cannot be a broker username: Mosquitto's password file uses ':' as "
            "its separator; give the gateway an id without ':'"
        )
    if not _USERNAME_RE.match(name):
        raise DeviceError(
            f"{name!r} is not a valid username: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def new_password() -> str:
    """A random password (256 bits, URL-safe, so it needs no quoting in YAML or env files)."""
    return secrets.token_urlsafe(32)


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS
) -> str:
    """Mosquitto's ``$7$`` hash of ``password`` (PBKDF2-SHA512, as ``mosquitto_passwd``)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash."""
    try:
        _, kind, iterations, salt, digest = password_hash.split("$")
        if kind != "7":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations), len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def acl_rules(identity: Identity) -> list[tuple[str, str]]:
    """The (access, topic filter) pairs of ``identity``; Mosquitto denies everything else."""
    if identity.role is Role.GATEWAY:
        assert identity.site is not None  # checked by Identity
        own = f"{PREFIX}/{identity.site}/{identity.username}"
        rules = [("write", f"{own}/{kind}") for kind in GATEWAY_KINDS]
        rules.append(("read", f"{own}/{Kind.ACK}/#"))
        rules.append(("read", f"{PREFIX}/{identity.site}/alerts"))
        return rules
    if identity.role is Role.INGEST:
        rules = [("read", f"{PREFIX}/+/+/{kind}") for kind in GATEWAY_KINDS]
        rules.append(("write", f"{PREFIX}/+/+/{Kind.ACK}/+"))
        return rules
    if identity.role is Role.NOTIFIER:
        return [("write", f"{PREFIX}/+/alerts")]
    return [("read", "#")]  # observer


def _active(identities: Iterable[Identity]) -> list[Identity]:
    return sorted(identities, key=lambda i: (i.role is not Role.GATEWAY, i.site or "", i.username))


def render_passwd(identities: Sequence[Identity]) -> str:
    """Mosquitto's password file for ``identities`` (``user:hash`` lines)."""
    return "".join(f"{i.username}:{i.password_hash}\n" for i in _active(identities))


def render_acl(identities: Sequence[Identity]) -> str:
    """Mosquitto's ACL file for ``identities``: one commented block per account."""
    lines = [
        "# ColdTrace broker ACL, written by `coldtrace devices`; edit with that command, not by",
        "# hand (the next provisioning rewrites this file). Anything not listed is denied:",
        "# there are no rules for anonymous clients, and the broker refuses them anyway.",
        "",
    ]
    for identity in _active(identities):
        where = f" of site {identity.site}" if identity.site else ""
        lines.append(f"# {identity.role}{where}")
        lines.append(f"user {identity.username}")
        lines.extend(f"topic {access} {topic}" for access, topic in acl_rules(identity))
        lines.append("")
    return "\n".join(lines)
