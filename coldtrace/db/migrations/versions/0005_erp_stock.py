"""ERP items, lots, locations, sensor assignments, movements, shipments, release.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT 1")  # filled in by the issue that owns this revision


def downgrade() -> None:
    pass
