"""Broker identities, pure and on disk: password hashes, ACL rules, the identity directory."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from coldtrace.devices import (
    DeviceError,
    Identity,
    Role,
    acl_rules,
    check_password,
    hash_password,
    render_acl,
    render_passwd,
)
from coldtrace.devices_store import DeviceDirectory, service_env
from telemetry.topics import Kind

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)


def gateway(site: str, gw: str) -> Identity:
    return Identity(gw, Role.GATEWAY, "$7$1$AAAA$AAAA", site)


def may(identity: Identity, access: str, topic: str) -> bool:
    return any(a == access and topic_matches_sub(f, topic) for a, f in acl_rules(identity))


@given(ids, ids, ids, ids)
def test_a_gateway_may_write_only_under_its_own_prefix(s1: str, g1: str, s2: str, g2: str) -> None:
    me = gateway(s1, g1)
    for kind in (Kind.READINGS, Kind.TAGS, Kind.SCANS, Kind.STATE):
        assert may(me, "write", f"ct/v1/{s1}/{g1}/{kind}")
        if (s2, g2) != (s1, g1):
            assert not may(me, "write", f"ct/v1/{s2}/{g2}/{kind}")
    assert not may(me, "write", f"ct/v1/{s1}/{g1}/ack/stream-1")  # only ingest acks
    assert not may(me, "write", f"ct/v1/{s1}/alerts")  # only the notifier
    assert may(me, "read", f"ct/v1/{s1}/{g1}/ack/stream-1")
    assert may(me, "read", f"ct/v1/{s1}/alerts")
    if (s2, g2) != (s1, g1):
        assert not may(me, "read", f"ct/v1/{s2}/{g2}/ack/stream-1")
    if s2 != s1:
        assert not may(me, "read", f"ct/v1/{s2}/alerts")


def test_service_roles_have_the_documented_rules() -> None:
    ingest = Identity("ingest", Role.INGEST, "h")
    notifier = Identity("notifier", Role.NOTIFIER, "h")
    observer = Identity("observer", Role.OBSERVER, "h")
    assert may(ingest, "read", "ct/v1/p/g/readings")
    assert may(ingest, "write", "ct/v1/p/g/ack/s")
    assert not may(ingest, "write", "ct/v1/p/g/readings")
    assert not may(ingest, "write", "ct/v1/p/alerts")
    assert may(notifier, "write", "ct/v1/p/alerts")
    assert not any(a == "read" for a, _ in acl_rules(notifier))
    assert may(observer, "read", "ct/v1/p/g/ack/s")
    assert not any(a == "write" for a, _ in acl_rules(observer))


def test_names_that_a_password_file_cannot_hold_are_refused() -> None:
    with pytest.raises(DeviceError, match="separator"):
        gateway("p", "gw:1")
    with pytest.raises(DeviceError, match="not a valid username"):
        gateway("p", "gw 1")
    with pytest.raises(DeviceError, match="site"):
        Identity("ingest", Role.INGEST, "h", site="p")


def test_hash_is_mosquitto_passwds_format_both_ways(tmp_path: Path) -> None:
    exe = shutil.which("mosquitto_passwd")
    if exe is None:
        pytest.skip("mosquitto_passwd is not installed")
    pwfile = tmp_path / "pw"
    subprocess.run([exe, "-c", "-b", str(pwfile), "alice", "s3cret"], check=True)
    theirs = pwfile.read_text().strip().split(":", 1)[1]
    assert check_password("s3cret", theirs)
    assert not check_password("s3cret!", theirs)
    ours = hash_password("s3cret")
    assert ours.startswith("$7$")
    assert check_password("s3cret", ours)
    assert not check_password("s3cret", "garbage")


def test_rendered_files_list_every_active_identity() -> None:
    identities = [gateway("plant-1", "gw-1"), Identity("ingest", Role.INGEST, "$7$x")]
    assert render_passwd(identities) == "gw-1:$7$1$AAAA$AAAA\ningest:$7$x\n"
    acl = render_acl(identities)
    assert "user gw-1\ntopic write ct/v1/plant-1/gw-1/readings\n" in acl
    assert "user ingest\ntopic read ct/v1/+/+/readings\n" in acl
    assert "pattern" not in acl  # nothing applies to all users


def test_directory_provisions_rotates_and_revokes(tmp_path: Path) -> None:
    d = DeviceDirectory(tmp_path / "mqtt")
    first = d.provision_gateway("plant-1", "gw-1")
    assert check_password(first.password, next(iter(_hashes(d).values())))
    with pytest.raises(DeviceError, match="already provisioned"):
        d.provision_gateway("plant-1", "gw-1")
    with pytest.raises(DeviceError, match="unique across sites"):
        d.provision_gateway("plant-2", "gw-1")
    with pytest.raises(DeviceError, match="unique across sites"):
        d.provision_service(Role.INGEST, "gw-1")
    second = d.provision_gateway("plant-1", "gw-1", rotate=True)
    assert not check_password(first.password, _hashes(d)["gw-1"])
    assert check_password(second.password, _hashes(d)["gw-1"])
    assert first.password not in (tmp_path / "mqtt" / "identities.json").read_text()
    d.revoke("gw-1")
    assert _hashes(d) == {}
    assert "gw-1" not in d.acl_path.read_text()
    assert d.entries()[0].revoked is not None  # kept, for the record
    with pytest.raises(DeviceError, match="not an active identity"):
        d.revoke("gw-1")
    d.provision_gateway("plant-2", "gw-1")  # a revoked name may be given out again
    for name in ("passwd", "identities.json"):
        assert stat.S_IMODE((tmp_path / "mqtt" / name).stat().st_mode) == 0o600
    log = (tmp_path / "mqtt" / "devices.log").read_text().splitlines()
    assert [line.split()[2:4] for line in log] == [
        ["provision", "gw-1"],
        ["rotate", "gw-1"],
        ["revoke", "gw-1"],
        ["provision", "gw-1"],
    ]


def test_reload_without_a_running_broker_says_so(tmp_path: Path) -> None:
    d = DeviceDirectory(tmp_path)
    assert d.reload_broker() is None
    d.pid_path.write_text("999999999\n")
    assert d.reload_broker() is None


def _hashes(d: DeviceDirectory) -> dict[str, str]:
    lines = d.passwd_path.read_text().splitlines()
    return dict(line.split(":", 1) for line in lines)  # type: ignore[misc]


def test_the_ingest_share_group_is_a_secret_kept_across_rotation(tmp_path: Path) -> None:
    """Red team (issue 9): a well-known group let any account make the broker drop
    ingest's messages; the group is random, the same for every ingest account, and
    survives a password rotation (workers keep their persistent sessions)."""
    devices = DeviceDirectory(tmp_path)
    first = devices.provision_service(Role.INGEST, "ingest")
    assert first.share_group is not None
    assert first.share_group.startswith("ingest-")
    assert len(first.share_group) >= 7 + 32
    env = service_env(Role.INGEST, first)
    assert env["COLDTRACE_INGEST_SHARE_GROUP"] == first.share_group
    assert first.share_group not in repr(first)
    rotated = devices.provision_service(Role.INGEST, "ingest", rotate=True)
    assert rotated.password != first.password
    assert rotated.share_group == first.share_group
    second = devices.provision_service(Role.INGEST, "ingest-b")
    assert second.share_group == first.share_group
    notifier = devices.provision_service(Role.NOTIFIER, "notifier")
    assert notifier.share_group is None
    assert "COLDTRACE_NOTIFY_SHARE_GROUP" not in service_env(Role.NOTIFIER, notifier)
    other = DeviceDirectory(tmp_path / "elsewhere").provision_service(Role.INGEST, "ingest")
    assert other.share_group != first.share_group


def test_session_login_gives_an_active_or_revoked_account_a_new_password(tmp_path: Path) -> None:
    """`devices revoke --end-session` logs in once as the account it retires: with a new
    password, whatever the old one was, even after the account was revoked."""
    d = DeviceDirectory(tmp_path)
    old = d.provision_service(Role.INGEST, "ingest-2")
    once = d.session_login("ingest-2")
    assert once.password != old.password
    assert check_password(once.password, _hashes(d)["ingest-2"])
    assert once.share_group == old.share_group  # still a member of the same group
    d.revoke("ingest-2")
    again = d.session_login("ingest-2")  # revoked: active again until the next revoke
    assert check_password(again.password, _hashes(d)["ingest-2"])
    assert d.active("ingest-2") is not None
    gw = d.provision_gateway("plant-1", "gw-1")
    assert d.session_login("gw-1").password != gw.password
    assert d.active("gw-1") == Identity("gw-1", Role.GATEWAY, _hashes(d)["gw-1"], "plant-1")
    with pytest.raises(DeviceError, match="never provisioned"):
        d.session_login("gw-unknown")
