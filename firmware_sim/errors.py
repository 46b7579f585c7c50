"""Errors of the simulator, one root so callers can catch everything it raises."""

from __future__ import annotations


class SimulatorError(Exception):
    """Root of all errors raised by `firmware_sim`."""


class ModelError(SimulatorError, ValueError):
    """Parameters or a step that the thermal model cannot work with."""


class BindError(SimulatorError):
    """A simulated device could not listen on its address (port taken, bad host)."""

    def __init__(self, name: str, host: str, port: int) -> None:
        super().__init__(f"device {name}: cannot listen on {host}:{port}")
        self.name = name
        self.host = host
        self.port = port
