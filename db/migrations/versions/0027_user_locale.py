"""The language each ERP user reads the pages in (issue 11).

``erp.users.locale``: ``en`` or ``zh_CN``, set by the user on the account page; NULL
means "as my browser asks" (``Accept-Language``). A column of the users table, so its
changes are in the users' audit trail like any other change of the account.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column, NULL for every existing user (the browser decides, as before)."""
    op.execute(
        "ALTER TABLE erp.users ADD COLUMN locale text"
        " CONSTRAINT users_locale_known CHECK (locale IN ('en', 'zh_CN'));"
        " COMMENT ON COLUMN erp.users.locale IS"
        " 'the language of the pages for this user; NULL: the browser''s Accept-Language'"
    )


def downgrade() -> None:
    """Drop the column."""
    op.execute("ALTER TABLE erp.users DROP COLUMN locale")
