"""Run ColdTrace services as child processes: start, watch, restart, stop.

Used by ``coldtrace demo`` and by the end-to-end tests, which need to kill and restart
real processes. A child that exits unexpectedly is restarted with a growing delay; its
output goes to a log file of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType


@dataclass
class Child:
    """One supervised process."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or restart) the process, appending to its log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,  # Ctrl-C in the terminal goes to the supervisor only
        )
        log.close()

    def signal(self, signum: int) -> None:
        """Send a signal if the process is alive."""
        if self.running and self.process is not None:
            self.process.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; return the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def coldtrace_args(*args: str) -> list[str]:
    """Command line for a ``coldtrace`` subcommand in this interpreter."""
    return [sys.executable, "-m", "coldtrace", *args]


@dataclass
class Supervisor:
    """Keeps a set of children running until stopped."""

    logdir: Path
    children: dict[str, Child] = field(default_factory=dict)
    stopping: bool = False

    def add(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        """Register and start a child."""
        child = Child(name, args, self.logdir / f"{name}.log", env or {})
        self.children[name] = child
        child.start()
        return child

    def watch(self) -> list[str]:
        """Restart children that died; return the names restarted now."""
        restarted = []
        now = time.monotonic()
        for child in self.children.values():
            if self.stopping or child.running or child.process is None:
                continue
            if child.next_start == 0.0:
                child.next_start = now + min(2.0**child.restarts, 30.0)
            if now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start()
                restarted.append(child.name)
        return restarted

    def stop(self, order: list[str] | None = None) -> dict[str, int | None]:
        """Stop children in ``order`` (default: reverse of start) and return exit codes."""
        self.stopping = True
        names = order or list(reversed(self.children))
        return {name: self.children[name].stop() for name in names}


@dataclass
class StopRequest:
    """Set by SIGTERM or SIGINT (Ctrl-C) while `stop_requests` is active."""

    signal_name: str | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self.signal_name is not None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Turn SIGTERM and SIGINT into a flag the caller's loop polls; restore the handlers after.

    The children run in sessions of their own (``start_new_session``), so neither a
    terminal's Ctrl-C nor a ``kill`` of the supervisor reaches them: the supervisor must
    see the signal, leave its loop and stop them itself. A second signal changes nothing:
    the stop already under way is what ends the children cleanly.
    """
    request = StopRequest()

    def _handle(signum: int, _frame: FrameType | None) -> None:
        if request.signal_name is None:
            request.signal_name = signal.Signals(signum).name

    previous = {s: signal.signal(s, _handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
