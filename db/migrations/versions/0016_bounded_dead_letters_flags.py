"""Bounded, idempotent dead letters with retention; reading flags 0..65535 stored exactly.

Revision ID: 0016
Revises: 0015

Dead letters keep a prefix of the payload (ingest's ``dead_letter_payload_bytes``) with
its total size and sha256, are unique on ``dedupe_key`` (a re-sent dead letter counts
``times_received`` up instead of adding a row) and are purged by ingest once
``last_received_at`` is older than the retention. Existing rows keep their whole payload;
of existing duplicates the first gets the key, the others keep a NULL key and age out.

``flags`` was smallint while the wire allows 0..65535: psycopg's binary COPY wrapped
32768..65535 to negative numbers. The column becomes integer with a CHECK, and the
wrapped values are turned back (v < 0 → v + 65536, exact). Changing a column's type
rewrites the whole readings table and its indexes under an ACCESS EXCLUSIVE lock —
ingest waits (the broker and the gateways' outboxes hold the data), readers wait. See
docs/reliability.md for the measured cost and the procedure for a large table.
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

DEAD_LETTERS = r"""
ALTER TABLE telemetry.dead_letters
    ADD COLUMN payload_size integer,
    ADD COLUMN payload_sha256 bytea,
    ADD COLUMN dedupe_key text,
    ADD COLUMN times_received integer NOT NULL DEFAULT 1,
    ADD COLUMN last_received_at timestamptz;

UPDATE telemetry.dead_letters
   SET payload_size = octet_length(payload),
       payload_sha256 = sha256(payload),
       last_received_at = received_at;

-- the same keys ingest computes (ingest/dead_letters.py), on the first row of each
WITH keyed AS (
    SELECT id, k, row_number() OVER (PARTITION BY k ORDER BY id) AS n
      FROM (SELECT id,
                   CASE WHEN stream IS NOT NULL AND seq IS NOT NULL
                        THEN 'item ' || topic || ' ' || stream || ' ' || seq
                        ELSE 'message ' || encode(
                            sha256(convert_to(topic, 'UTF8') || '\x00'::bytea || payload), 'hex')
                   END AS k
              FROM telemetry.dead_letters) AS x
)
UPDATE telemetry.dead_letters d SET dedupe_key = keyed.k
  FROM keyed WHERE keyed.id = d.id AND keyed.n = 1;

ALTER TABLE telemetry.dead_letters
    ALTER COLUMN payload_size SET NOT NULL,
    ALTER COLUMN payload_sha256 SET NOT NULL,
    ALTER COLUMN last_received_at SET NOT NULL,
    ALTER COLUMN last_received_at SET DEFAULT now(),
    ADD CONSTRAINT dead_letters_dedupe_key UNIQUE (dedupe_key),
    ADD CONSTRAINT dead_letters_payload_size CHECK (payload_size >= octet_length(payload)),
    ADD CONSTRAINT dead_letters_sha256 CHECK (octet_length(payload_sha256) = 32),
    ADD CONSTRAINT dead_letters_times CHECK (times_received >= 1);
CREATE INDEX dead_letters_last_received_at ON telemetry.dead_letters (last_received_at);

COMMENT ON COLUMN telemetry.dead_letters.payload IS
    'The first bytes of the rejected payload (ingest setting dead_letter_payload_bytes).';
COMMENT ON COLUMN telemetry.dead_letters.payload_size IS 'Size of the whole payload, bytes.';
COMMENT ON COLUMN telemetry.dead_letters.payload_sha256 IS 'sha256 of the whole payload.';
COMMENT ON COLUMN telemetry.dead_letters.dedupe_key IS
    'item <topic> <stream> <seq> for a rejected item, message <sha256(topic NUL payload)> for a whole message: a re-sent copy adds no row.';
COMMENT ON COLUMN telemetry.dead_letters.times_received IS
    'How often this dead letter arrived (re-sends and re-deliveries included).';
"""

FLAGS = """
ALTER TABLE telemetry.readings
    ALTER COLUMN flags TYPE integer
    USING (CASE WHEN flags < 0 THEN flags + 65536 ELSE flags END);
ALTER TABLE telemetry.readings
    ADD CONSTRAINT readings_flags_range CHECK (flags BETWEEN 0 AND 65535);
"""


def upgrade() -> None:
    op.execute(DEAD_LETTERS)
    op.execute(FLAGS)


def downgrade() -> None:
    # flags back to the wrapped smallint form (lossless); payloads cut to a prefix stay cut
    op.execute(
        """
        ALTER TABLE telemetry.readings DROP CONSTRAINT readings_flags_range;
        ALTER TABLE telemetry.readings
            ALTER COLUMN flags TYPE smallint
            USING (CASE WHEN flags > 32767 THEN flags - 65536 ELSE flags END);
        DROP INDEX telemetry.dead_letters_last_received_at;
        ALTER TABLE telemetry.dead_letters
            DROP COLUMN payload_size, DROP COLUMN payload_sha256, DROP COLUMN dedupe_key,
            DROP COLUMN times_received, DROP COLUMN last_received_at;
        """
    )
