"""A PostgreSQL cluster of the chaos suite's own, so a fault can restart or crash it.

The shared development cluster serves every other test and helper on the machine; a
restart there would hit them all. This one lives in a temporary directory on a free port
of 127.0.0.1 (``initdb`` and ``pg_ctl`` of PostgreSQL 15, run as the ``postgres`` user
when the suite runs as root), with the production roles (`db.roles`) and one migrated
database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from coldtrace.broker import free_port
from db import migrate, roles

BIN = Path(os.environ.get("COLDTRACE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PASSWORDS = {"coldtrace": "coldtrace", "coldtrace_app": "coldtrace_app"}


def _as_postgres(args: list[str]) -> list[str]:
    """Run ``args`` as the ``postgres`` user if we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@dataclass
class Cluster:
    """One private PostgreSQL cluster: init once, then start, stop, crash, restart."""

    datadir: Path
    port: int

    @classmethod
    def create(cls, workdir: Path) -> Cluster:
        """Initialise a cluster in ``workdir`` (trust on loopback: it is the suite's own)."""
        if not (BIN / "initdb").exists():
            raise FileNotFoundError(f"no initdb in {BIN} (set COLDTRACE_PG_BIN)")
        workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres", "postgres")
        cluster = cls(workdir / "data", free_port())
        subprocess.run(
            _as_postgres(
                [
                    str(BIN / "initdb"),
                    "-D",
                    str(cluster.datadir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        return cluster

    def url(self, login: str = "postgres", dbname: str = "postgres") -> str:
        """A URL of this cluster as ``login`` (password as in `PASSWORDS`)."""
        password = PASSWORDS.get(login)
        auth = f"{login}:{password}" if password else login
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60", *args]),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        """Start the server (waits until it accepts connections)."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        self._ctl("-o", options, "-l", str(self.datadir.parent / "postgres.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` is a crash (no checkpoint, recovery at start)."""
        self._ctl("-m", mode, "stop")

    def prepare(self, dbname: str) -> str:
        """Create the roles and a migrated database; return its URL as the application role."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            roles.create(conn, owner="coldtrace", roles=roles.DatabaseRoles(), passwords=PASSWORDS)
        migrate.upgrade(self.url("coldtrace", dbname))
        return self.url("coldtrace_app", dbname)
