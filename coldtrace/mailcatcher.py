"""A local SMTP server (aiosmtpd) that keeps every message: the demo's stand-in for e-mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from coldtrace.broker import free_port


@dataclass
class MailCatcher:
    """Receives mail on 127.0.0.1 and writes each message to ``folder`` as an .eml file."""

    folder: Path
    port: int = field(default_factory=free_port)
    messages: list[bytes] = field(default_factory=list)
    _controller: Controller | None = None

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the message (aiosmtpd calls this once per accepted message)."""
        data = bytes(envelope.content)
        self.messages.append(data)
        (self.folder / f"{len(self.messages):04d}.eml").write_bytes(data)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        """Listen in a background thread."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def subjects(self) -> list[str]:
        """The subject lines of the messages received so far."""
        return [str(message_from_bytes(m, policy=default)["subject"]) for m in self.messages]
