"""Indexes on the locations of stock movements.

The location compliance check (the items a location holds), retiring a location, the
"has history" rule of master-data changes and the release-evidence check of back-dated
assignment changes all ask "which movements touched this location"; without these
indexes each of them read the whole movements table.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE INDEX stock_movements_to ON erp.stock_movements (to_location_id, moved_at);
        CREATE INDEX stock_movements_from ON erp.stock_movements (from_location_id, moved_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX erp.stock_movements_to, erp.stock_movements_from;")
