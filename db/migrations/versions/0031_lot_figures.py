"""Each lot's release figures, as the release evidence computes them, kept for Grafana.

``erp.lot_figures``: one row per lot with MKT, time out of range, coverage and the rest
of the statistics that ``GET /api/lots/{id}/release`` shows, written by ``coldtrace
erp-jobs`` (``erp_core.lot_history.figures``) from the lot history the release decision
reads (``erp_core.lot_history.history.lot_history``, statistics by the pure
``exposure``). The batch dashboard reads this row instead of computing the figures a
second time in SQL: one definition, and a year-long lot answers in a millisecond
instead of seconds (docs/grafana.md, "Batch figures").

The row says when it was computed and over which life (``life_end`` is the time of the
computation while the lot is still held), and keeps the inputs the job compares to find
stale rows: the item's limits and the sensors read.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06

The privileges of the application and reader roles are not set here: ``coldtrace db
upgrade`` applies ``db/grants.py`` after every migration.
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE erp.lot_figures (
            lot_id              bigint PRIMARY KEY REFERENCES erp.lots (id) ON DELETE CASCADE,
            computed_at         timestamptz NOT NULL,
            life_start          timestamptz NOT NULL,
            life_end            timestamptz NOT NULL,
            life_open           boolean NOT NULL,
            readings            integer NOT NULL,
            mkt                 double precision,
            mkt_limit           double precision,
            mean                double precision,
            min                 double precision,
            max                 double precision,
            tor_minutes         double precision NOT NULL,
            tor_longest_minutes double precision NOT NULL,
            tor_budget_minutes  double precision,
            coverage            double precision NOT NULL,
            range_low           double precision NOT NULL,
            range_high          double precision NOT NULL,
            sensor_ids          integer[] NOT NULL
        );
        COMMENT ON TABLE erp.lot_figures IS
            'Release figures per lot from the release evidence code (erp_core.lot_history.figures); read by Grafana';
        COMMENT ON COLUMN erp.lot_figures.life_end IS
            'End of the lot''s life, or computed_at while some of it is still held (life_open)';
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE erp.lot_figures")
