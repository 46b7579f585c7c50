"""Where the record key and the audit anchor file are (``COLDTRACE_RECORD_*``).

Read by the API (signing, ``/api/audit/verify``), the ERP jobs (periodic checkpoints)
and the ``coldtrace audit`` commands; built in each process's ``main``, never at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from erp_core.audit import keys
from erp_core.audit.errors import RecordKeyError


@dataclass(frozen=True, slots=True)
class RecordConfig:
    """The loaded key ring and where the anchors go (None: this process writes none)."""

    keyring: keys.Keyring
    anchor_file: Path | None


class RecordSettings(BaseSettings):
    """The record key file, the anchor file and how often the ERP jobs write a checkpoint."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_RECORD_")

    # One key per line; the last signs (erp_core/audit/keys.py). Not in the database.
    key_file: Path | None = None
    # Append-only file of HMAC-signed checkpoints of the audit chain's head.
    anchor_file: Path | None = None
    # The ERP jobs anchor the head this often (seconds): the window in which a rewrite
    # of the newest entries by someone with the database's superuser goes unnoticed.
    checkpoint_interval_s: float = Field(default=60.0, gt=0)

    def load(self) -> RecordConfig:
        """Read the key file; RecordKeyError when it is not configured or not readable."""
        if self.key_file is None:
            raise RecordKeyError(
                "no record key: set COLDTRACE_RECORD_KEY_FILE (create one with "
                "`coldtrace audit keygen --key-file PATH`)"
            )
        return RecordConfig(keys.load(self.key_file), self.anchor_file)
