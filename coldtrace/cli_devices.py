"""``coldtrace devices …``: broker accounts and ACLs for gateways and services, and TLS.

The broker directory (``--dir``, or ``COLDTRACE_BROKER_DIR``) holds the password file,
the ACL file and the TLS files that Mosquitto reads (docs/mqtt.md). Every change
rewrites them and, when a broker started by ColdTrace runs on them (its pid file is in
the directory), reloads it at once; otherwise the command says how to reload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console

from coldtrace.devices import DeviceError, Role, acl_rules
from coldtrace.devices_store import (
    SECRET_MODE,
    Credentials,
    DeviceDirectory,
    service_env,
    write_file,
)

devices_app = typer.Typer(
    help="Broker accounts, ACLs and TLS for gateways and services.", no_args_is_help=True
)
console = Console(soft_wrap=True)  # a snippet must not be wrapped
err_console = Console(stderr=True, soft_wrap=True)

Dir = Annotated[
    Path,
    typer.Option("--dir", envvar="COLDTRACE_BROKER_DIR", help="The broker's identity directory."),
]
PidFile = Annotated[
    Path | None,
    typer.Option(help="Pid file of the broker to reload (default: mosquitto.pid in --dir)."),
]
NoReload = Annotated[bool, typer.Option("--no-reload", help="Write the files only.")]
DEFAULT_DIR = Path("var/mqtt")
RELOAD_HINT = (
    "reload the broker so it takes effect: `systemctl reload mosquitto`, "
    "`kill -HUP <pid>`, or with docker compose the reload step in docs/mqtt.md"
)


def _fail(err: DeviceError) -> typer.Exit:
    err_console.print(f"[red]{err}[/red]")
    return typer.Exit(2)


def _reload(directory: DeviceDirectory, pid_file: Path | None, *, no_reload: bool) -> None:
    if no_reload:
        console.print(f"files written; {RELOAD_HINT}")
        return
    try:
        pid = directory.reload_broker(pid_file)
    except DeviceError as err:
        raise _fail(err) from err
    if pid is None:
        console.print(
            f"[yellow]no running broker found in {directory.path}[/yellow]; {RELOAD_HINT}"
        )
    else:
        console.print(f"broker (pid {pid}) reloaded: the change is in force")


def _acl_text(directory: DeviceDirectory, name: str) -> str:
    identity = directory.active(name)
    if identity is None:
        return ""
    rules = "\n".join(f"topic {access} {topic}" for access, topic in acl_rules(identity))
    return f"user {name}\n{rules}"


def gateway_snippet(
    site: str,
    gateway: str,
    creds: Credentials,
    *,
    broker_host: str,
    broker_port: int | None,
    ca_file: str | None,
) -> str:
    """The gateway YAML that gives it its identity and broker login (TLS unless no CA)."""
    mqtt: dict[str, object] = {"host": broker_host}
    if broker_port is not None:
        mqtt["port"] = broker_port
    mqtt |= {"username": creds.username, "password": creds.password}
    if ca_file is not None:
        mqtt["tls"] = {"ca_file": ca_file}
    doc = {"gateway": {"id": gateway, "site": site}, "mqtt": mqtt}
    return yaml.safe_dump(doc, sort_keys=False)


@devices_app.command("provision")
def provision(
    site: Annotated[str, typer.Argument(help="The gateway's site id.")],
    gateway: Annotated[str, typer.Argument(help="The gateway id (its broker username).")],
    directory: Dir = DEFAULT_DIR,
    rotate: Annotated[bool, typer.Option(help="Give an existing gateway a new password.")] = False,
    broker_host: Annotated[
        str, typer.Option(help="Broker host name as the gateway reaches it.")
    ] = "BROKER-HOST",
    broker_port: Annotated[int | None, typer.Option(help="Broker port (TLS: 8883).")] = None,
    ca_file: Annotated[
        str, typer.Option(help="Where the gateway will find the broker's CA certificate.")
    ] = "/etc/coldtrace/mqtt-ca.crt",
    plain: Annotated[
        bool, typer.Option("--plain", help="No TLS (only on a network you trust).")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the snippet to this file (mode 0600).")
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(help="Also write the bare password here (mode 0600; mqtt.password_file)."),
    ] = None,
    pid_file: PidFile = None,
    no_reload: NoReload = False,
) -> None:
    """Create a gateway's broker account; print its config snippet and its ACL."""
    devices = DeviceDirectory(directory)
    try:
        creds = devices.provision_gateway(site, gateway, rotate=rotate)
    except DeviceError as err:
        raise _fail(err) from err
    snippet = gateway_snippet(
        site,
        gateway,
        creds,
        broker_host=broker_host,
        broker_port=broker_port,
        ca_file=None if plain else ca_file,
    )
    console.print(f"[green]gateway {gateway} of site {site} provisioned[/green]")
    console.print(f"# broker ACL entries ({devices.acl_path}):")
    console.print(_acl_text(devices, gateway), markup=False, highlight=False)
    console.print("# the gateway's config (the password is shown only now):")
    console.print(snippet, markup=False, highlight=False)
    if out is not None:
        write_file(out, snippet, SECRET_MODE)
        console.print(f"snippet written to {out}")
    if password_file is not None:
        write_file(password_file, creds.password + "\n", SECRET_MODE)
        console.print(f"password written to {password_file}")
    _reload(devices, pid_file, no_reload=no_reload)


@devices_app.command("service")
def service(
    role: Annotated[Role, typer.Argument(help="ingest, notifier or observer.")],
    name: Annotated[
        str | None,
        typer.Option(
            help="Account name (default: the role). One account per process: a second "
            "ingest worker is --name ingest-2 (same share group)."
        ),
    ] = None,
    directory: Dir = DEFAULT_DIR,
    rotate: Annotated[bool, typer.Option(help="Give an existing account a new password.")] = False,
    env_file: Annotated[
        Path | None,
        typer.Option(help="Write the service's environment here (default: <dir>/<name>.env)."),
    ] = None,
    pid_file: PidFile = None,
    no_reload: NoReload = False,
) -> None:
    """Create a service account (ingest, notifier, observer) and its environment file."""
    devices = DeviceDirectory(directory)
    account = name or str(role)
    try:
        creds = devices.provision_service(role, account, rotate=rotate)
    except DeviceError as err:
        raise _fail(err) from err
    console.print(f"[green]{role} account {account} provisioned[/green]")
    console.print(_acl_text(devices, account), markup=False, highlight=False)
    if role is Role.OBSERVER:
        console.print(f"username {creds.username}\npassword {creds.password}", markup=False)
    else:
        path = env_file or directory / f"{account}.env"
        env = service_env(role, creds)
        write_file(path, "".join(f"{k}={v}\n" for k, v in env.items()), SECRET_MODE)
        console.print(f"environment (username, password) written to {path} (mode 0600)")
    _reload(devices, pid_file, no_reload=no_reload)


@devices_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The gateway id or service account.")],
    directory: Dir = DEFAULT_DIR,
    pid_file: PidFile = None,
    no_reload: NoReload = False,
    end_session: Annotated[
        bool,
        typer.Option(
            "--end-session",
            help="First make the broker discard the account's persistent session (a retired "
            "ingest worker's share of the group): log in once with a clean session.",
        ),
    ] = False,
    broker_host: Annotated[
        str, typer.Option(help="--end-session: the broker's plain listener.")
    ] = "127.0.0.1",
    broker_port: Annotated[int, typer.Option(help="--end-session: its port.")] = 1883,
    wait: Annotated[
        float, typer.Option(help="--end-session: seconds to wait for the broker's reload.")
    ] = 60.0,
) -> None:
    """Remove an account: on reload the broker disconnects it and refuses it from then on."""
    devices = DeviceDirectory(directory)
    try:
        if end_session:
            _end_session(devices, name, pid_file, broker_host, broker_port, wait)
        identity = devices.revoke(name)
    except DeviceError as err:
        raise _fail(err) from err
    console.print(f"[green]{identity.role} {name} revoked[/green]")
    if identity.role is Role.INGEST and not end_session:
        console.print(
            f"[yellow]{name}'s persistent session stays in the broker[/yellow] and goes on "
            "taking its turn of the group's messages, which wait there (the gateways' "
            "watermarks stall and they re-send); if the worker is retired for good, run "
            f"`coldtrace devices revoke {name} --end-session` (docs/mqtt.md)"
        )
    _reload(devices, pid_file, no_reload=no_reload)


def _end_session(
    devices: DeviceDirectory,
    name: str,
    pid_file: Path | None,
    host: str,
    port: int,
    wait: float,
) -> None:
    """Give ``name`` a one-time password, reload, log in once with a clean session."""
    from coldtrace.broker import BrokerError, discard_session

    creds = devices.session_login(name)
    _reload(devices, pid_file, no_reload=False)
    console.print(f"logging in once as {name} with a clean session at {host}:{port} …")
    try:
        discard_session(host, port, creds, timeout=wait)
    except (BrokerError, OSError) as err:
        raise DeviceError(
            f"could not end {name}'s session: {err}. {name} now has a password nobody holds; "
            "run the command again when the broker is reachable"
        ) from err
    console.print(f"the broker discarded {name}'s session")


@devices_app.command("list")
def list_(directory: Dir = DEFAULT_DIR) -> None:
    """Every account: role, site, when created and revoked."""
    try:
        entries = DeviceDirectory(directory).entries()
    except DeviceError as err:
        raise _fail(err) from err
    for e in entries:
        state = f"revoked {e.revoked}" if e.revoked else "active"
        site = e.identity.site or "-"
        console.print(
            f"{e.identity.username:24} {e.identity.role:9} {site:16} created {e.created} {state}",
            markup=False,
            highlight=False,
        )


@devices_app.command("reload")
def reload(directory: Dir = DEFAULT_DIR, pid_file: PidFile = None) -> None:
    """Make the running broker read its password and ACL files again."""
    _reload(DeviceDirectory(directory), pid_file, no_reload=False)


@devices_app.command("ca")
def ca(
    host: Annotated[
        list[str],
        typer.Option("--host", help="A name or address gateways use for the broker (repeat)."),
    ],
    directory: Dir = DEFAULT_DIR,
    renew: Annotated[
        bool, typer.Option(help="Replace the server certificate, keeping the CA.")
    ] = False,
) -> None:
    """Create a CA and the broker's TLS certificate (for a plant without its own PKI)."""
    from coldtrace.devices_tls import create_ca, issue_server_certificate, tls_files

    files = tls_files(directory)
    now = datetime.now(UTC)
    try:
        if not renew:
            create_ca(directory, now=now)
        issue_server_certificate(directory, host, now=now)
    except DeviceError as err:
        raise _fail(err) from err
    console.print(f"CA certificate: {files.ca_cert} (give it to every gateway: mqtt.tls.ca_file)")
    console.print(f"server certificate for {', '.join(host)}: {files.server_cert}")
    console.print(f"server key: {files.server_key} (mode 0600, stays on the broker)")
    console.print("restart the broker to load a new certificate")
