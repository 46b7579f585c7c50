"""The request's part of a release signature, one FastAPI dependency for the API and pages.

A signed override (proposal or approval) needs, besides the signer's password and
comment, the request's clock, the login limits and attempt log, the server's record key
and key ring, and the client's address. The JSON endpoints and the page forms take them
all from this one dependency (``Signer``) instead of each listing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from erp_core.audit.keys import Keyring, RecordKey
from erp_core.auth.models import AttemptRecorder, LoginPolicy
from erp_core.deps import AttemptLog, LoginLimits, Now, Records, SigningKey
from erp_core.release.service import Signing


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """Everything a signature takes from the request; ``signing`` adds the signer's part."""

    now: datetime
    policy: LoginPolicy
    record_attempt: AttemptRecorder
    signing_key: RecordKey
    keyring: Keyring
    source: str | None

    def signing(self, password: str, comment: str | None = None) -> Signing:
        """The signature's inputs with the password the signer re-entered."""
        return Signing(
            password=password,
            comment=comment,
            now=self.now,
            policy=self.policy,
            record_attempt=self.record_attempt,
            signing_key=self.signing_key,
            source=self.source,
            keyring=self.keyring,
        )


def signing_request(  # noqa: PLR0913, PLR0917 - FastAPI dependencies, each explicit
    request: Request,
    now: Now,
    policy: LoginLimits,
    attempts: AttemptLog,
    key: SigningKey,
    records: Records,
) -> SigningRequest:
    """The request's part of a signature."""
    return SigningRequest(
        now=now,
        policy=policy,
        record_attempt=attempts,
        signing_key=key,
        keyring=records.keyring,
        source=request.client.host if request.client else None,
    )


Signer = Annotated[SigningRequest, Depends(signing_request)]
