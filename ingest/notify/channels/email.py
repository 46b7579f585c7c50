"""E-mail over SMTP (aiosmtplib): one connection per message, stable Message-ID.

The SMTP password never appears in an error text (``ingest.notify.redact.scrub``): a
server may quote what it was sent in its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from ingest.notify.channels import idempotency_key
from ingest.notify.errors import ChannelError
from ingest.notify.models import ClaimedDelivery, Message
from ingest.notify.redact import scrub


def build_email(delivery: ClaimedDelivery, message: Message, *, sender: str) -> EmailMessage:
    """The e-mail of one delivery; its Message-ID is the same on every retry."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = delivery.address
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{idempotency_key(delivery)}@coldtrace>"
    mail["X-ColdTrace-Alert"] = str(delivery.notice.alert_id)
    mail["X-ColdTrace-Event"] = str(delivery.notice.event_id)
    mail["X-ColdTrace-Delivery"] = str(delivery.id)
    mail.set_content(message.body)
    return mail


@dataclass(frozen=True, slots=True)
class EmailChannel:
    """Sends through one SMTP server."""

    host: str
    port: int
    sender: str
    timeout_s: float
    username: str | None = None
    password: str | None = None
    starttls: bool = False

    async def send(self, delivery: ClaimedDelivery, message: Message) -> None:
        """Hand the message to the SMTP server; return after its 250 to DATA."""
        mail = build_email(delivery, message, sender=self.sender)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as err:
            raise ChannelError(
                "email", delivery.address, self._scrub(str(err)), permanent=True
            ) from None
        except aiosmtplib.SMTPResponseException as err:
            permanent = 500 <= err.code < 600
            raise ChannelError(
                "email",
                delivery.address,
                self._scrub(f"SMTP {err.code} {err.message}"),
                permanent=permanent,
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as err:
            raise ChannelError(
                "email", delivery.address, self._scrub(f"{type(err).__name__}: {err}")
            ) from None

    def _scrub(self, text: str) -> str:
        return scrub(text, (self.password,))
