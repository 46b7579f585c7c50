"""The notification error tree: one root, structured subclasses."""

from __future__ import annotations

from ingest.errors import IngestError


class NotifyError(IngestError):
    """Root of every error the notifier raises on purpose."""


class ChannelError(NotifyError):
    """A channel could not deliver one message; ``permanent`` means retrying is pointless."""

    def __init__(self, channel: str, address: str, reason: str, *, permanent: bool = False) -> None:
        super().__init__(f"{channel} to {address}: {reason}")
        self.channel = channel
        self.address = address
        self.reason = reason
        self.permanent = permanent


class ChannelNotConfiguredError(ChannelError):
    """A route asks for a channel whose server/provider is not configured."""

    def __init__(self, channel: str, address: str, setting: str) -> None:
        super().__init__(
            channel, address, f"channel not configured (set {setting})", permanent=False
        )
        self.setting = setting


class RecipientError(NotifyError):
    """A recipient or route could not be added as asked."""
