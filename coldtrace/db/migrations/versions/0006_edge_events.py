"""RFID tag reads and barcode scans from gateways.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")  # filled in by the issue that owns this revision


def downgrade() -> None:
    pass
