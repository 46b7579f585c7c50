"""Start a Mosquitto of our own, with the project's config, on a free local port.

The demo and the tests use this rather than the system broker, whose Debian defaults
drop queued QoS 1 messages for a slow subscriber.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Self


class BrokerError(RuntimeError):
    """Mosquitto could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_config() -> str:
    """The project's Mosquitto settings (without listener and paths)."""
    return resources.files("coldtrace").joinpath("mosquitto.conf").read_text("utf-8")


@dataclass
class Broker:
    """A Mosquitto process with its own data directory; `start`/`stop` may be repeated."""

    workdir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    extra_config: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        """Where the generated config file is written."""
        return self.workdir / "mosquitto.conf"

    def write_config(self) -> None:
        """Write the project config plus this run's listener and paths."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        text = (
            project_config()
            + f"\nlistener {self.port} {self.host}\n"
            + f"user {getpass.getuser()}\n"  # as root Mosquitto would switch to 'mosquitto'
            + f"persistence_location {self.workdir}/\n"
            + f"log_dest file {self.workdir / 'mosquitto.log'}\n"
            + self.extra_config
            + "\n"
        )
        self.config_path.write_text(text)

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
