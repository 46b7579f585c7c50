"""QA release: inspections, deviations opened by excursions, signed release decisions,
record retention and expiry.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SQL = """
CREATE TABLE erp.inspections (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id        bigint NOT NULL REFERENCES erp.lots (id),
    kind          text NOT NULL CHECK (kind <> ''),
    result        text NOT NULL DEFAULT 'pending' CHECK (result IN ('pending', 'passed', 'failed')),
    inspected_by  text,
    inspected_at  timestamptz,
    notes         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (result = 'pending' OR (inspected_by IS NOT NULL AND inspected_at IS NOT NULL))
);
CREATE INDEX inspections_lot ON erp.inspections (lot_id);
SELECT erp.audit_table('erp.inspections');

-- A deviation: something that happened to a lot and needs a QA disposition.
-- 'investigate' keeps it open (with a CAPA reference); 'use_as_is' and 'reject' close it.
CREATE TABLE erp.deviations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id           bigint NOT NULL REFERENCES erp.lots (id),
    episode_id       bigint REFERENCES telemetry.excursion_episodes (id),
    title            text NOT NULL,
    description      text,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    disposition      text CHECK (disposition IN ('use_as_is', 'reject', 'investigate')),
    capa_ref         text,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    opened_by        text NOT NULL,
    closed_at        timestamptz,
    closed_by        text,
    closing_comment  text,
    signature_id     bigint,  -- erp.signatures(id); no FK: the app role may not lock signatures
    UNIQUE (lot_id, episode_id),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK (status = 'open' OR disposition IN ('use_as_is', 'reject')),
    CHECK (status = 'open' OR signature_id IS NOT NULL)
);
CREATE INDEX deviations_open ON erp.deviations (lot_id) WHERE status = 'open';
SELECT erp.audit_table('erp.deviations');

-- An excursion that reached the alarm (delay passed or an absolute limit broken) opens a
-- deviation on every lot whose temperature record it touches. Done by the database, so
-- late data, any number of ingest workers and re-evaluation all lead to the same result;
-- an overlapping episode of the same sensor (re-evaluated, merged) reuses the deviation.
CREATE FUNCTION erp.open_deviations_for_episode() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ep_end timestamptz := coalesce(NEW.end_t, NEW.last_t);
    lot    record;
BEGIN
    IF NEW.status <> 'active' OR NEW.level <> 'alarm'
       OR NOT (NEW.delay_reached OR NEW.abs_breach) THEN
        RETURN NEW;
    END IF;
    IF coalesce(current_setting('coldtrace.user', true), '') = '' THEN
        PERFORM set_config('coldtrace.user', 'system:excursions', true);
        PERFORM set_config('coldtrace.reason',
                           format('excursion episode %s reached the alarm', NEW.id), true);
    END IF;
    FOR lot IN
        SELECT DISTINCT m.lot_id
          FROM erp.sensor_assignments a
          JOIN erp.stock_movements m ON m.to_location_id = a.location_id
         WHERE a.sensor_id = NEW.sensor_id
           AND a.valid_from <= ep_end
           AND coalesce(a.valid_to, 'infinity') > NEW.start_t
           AND m.moved_at <= ep_end
    LOOP
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM erp.lot_segments(lot.lot_id, NEW.start_t, ep_end + interval '1 ms') g
             WHERE g.sensor_id = NEW.sensor_id);
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM erp.deviations d
              JOIN telemetry.excursion_episodes o ON o.id = d.episode_id
             WHERE d.lot_id = lot.lot_id AND o.sensor_id = NEW.sensor_id
               AND o.start_t <= ep_end AND coalesce(o.end_t, o.last_t) >= NEW.start_t);
        INSERT INTO erp.deviations (lot_id, episode_id, title, description, opened_by)
        VALUES (lot.lot_id, NEW.id,
                format('Temperature excursion (%s) on %s', NEW.kind,
                       (SELECT uid FROM telemetry.sensors WHERE id = NEW.sensor_id)),
                format('Episode %s from %s, peak %s °C%s', NEW.id, NEW.start_t,
                       round(NEW.peak::numeric, 1),
                       CASE WHEN NEW.late THEN ', found in late data' ELSE '' END),
                'system:excursions')
        ON CONFLICT (lot_id, episode_id) DO NOTHING;
    END LOOP;
    RETURN NEW;
END $$;
CREATE TRIGGER excursion_opens_deviations
    AFTER INSERT OR UPDATE ON telemetry.excursion_episodes
    FOR EACH ROW EXECUTE FUNCTION erp.open_deviations_for_episode();

-- The signed QA decision on a lot. Append-only and audited.
CREATE TABLE erp.release_decisions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id          bigint NOT NULL REFERENCES erp.lots (id),
    action          text NOT NULL CHECK (action IN ('release', 'reject')),
    verdict         text NOT NULL CHECK (verdict IN ('allowed', 'override')),
    justification   text,
    recommendation  jsonb NOT NULL,
    signature_id    bigint NOT NULL,  -- erp.signatures(id), see deviations.signature_id
    decided_by      text NOT NULL,
    decided_at      timestamptz NOT NULL,
    CHECK (verdict <> 'override' OR justification IS NOT NULL)
);
CREATE INDEX release_decisions_lot ON erp.release_decisions (lot_id);
SELECT erp.audit_table('erp.release_decisions');
CREATE TRIGGER release_decisions_append_only BEFORE UPDATE OR DELETE ON erp.release_decisions
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('release decisions are append-only');

-- Released and rejected are QA decisions: the lot may only enter them with a signed
-- decision recorded since its last status change (so a re-release after a hold needs a
-- new signature too). Whatever path changes the status, the database holds this line.
CREATE FUNCTION erp.lots_require_decision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IN ('released', 'rejected') AND NEW.status IS DISTINCT FROM OLD.status
       AND NOT EXISTS (
           SELECT 1 FROM erp.release_decisions d
            WHERE d.lot_id = NEW.id
              AND d.action = CASE NEW.status WHEN 'released' THEN 'release' ELSE 'reject' END
              AND d.decided_at >= OLD.status_changed_at) THEN
        RAISE EXCEPTION 'lot % may only become % through a signed QA decision', NEW.id, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER lots_require_decision BEFORE UPDATE OF status ON erp.lots
    FOR EACH ROW EXECUTE FUNCTION erp.lots_require_decision();

-- Record retention: how long the temperature record of a lot must be kept.
CREATE TABLE erp.retention_policy (
    id                    integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    years_after_expiry    integer NOT NULL DEFAULT 2 CHECK (years_after_expiry >= 0),
    years_without_expiry  integer NOT NULL DEFAULT 5 CHECK (years_without_expiry >= 0),
    near_expiry_days      integer NOT NULL DEFAULT 90 CHECK (near_expiry_days >= 0)
);
INSERT INTO erp.retention_policy DEFAULT VALUES;
SELECT erp.audit_table('erp.retention_policy');

CREATE FUNCTION erp.lot_retained_until(p_lot_id bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
    SELECT CASE
             WHEN i.implantable THEN 'infinity'::timestamptz
             WHEN l.expires_on IS NULL
               THEN l.created_at + make_interval(years => p.years_without_expiry)
             ELSE (l.expires_on + make_interval(years => p.years_after_expiry))::timestamptz
           END
      FROM erp.lots l JOIN erp.items i ON i.id = l.item_id
     CROSS JOIN erp.retention_policy p
     WHERE l.id = p_lot_id
$$;

-- Sensor time ranges that are part of a lot's record still under retention.
CREATE VIEW erp.protected_ranges AS
    SELECT g.sensor_id, g.segment_start, g.segment_end, l.id AS lot_id,
           erp.lot_retained_until(l.id) AS retained_until
      FROM erp.lots l
     CROSS JOIN LATERAL erp.lot_segments(l.id, '-infinity', 'infinity') g;

-- The only way readings are deleted: older than the cutoff and not protected. With
-- TimescaleDB, no drop_chunks retention policy is installed, because dropping a chunk
-- would take protected readings with it (see docs/release.md).
CREATE FUNCTION erp.retention_run(p_cutoff timestamptz, p_now timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM telemetry.readings r
     WHERE r.time < p_cutoff
       AND NOT EXISTS (
           SELECT 1 FROM erp.protected_ranges p
            WHERE p.sensor_id = r.sensor_id
              AND r.time >= p.segment_start AND r.time < p.segment_end
              AND p.retained_until > p_now);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Expired lots are locked: put on hold (never released again without a new signed
-- decision, and the release rules refuse an expired lot). Run periodically by the notifier.
CREATE FUNCTION erp.lock_expired_lots(p_now timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    IF coalesce(current_setting('coldtrace.user', true), '') = '' THEN
        PERFORM set_config('coldtrace.user', 'system:expiry', true);
        PERFORM set_config('coldtrace.reason', 'expired lots are put on hold', true);
    END IF;
    UPDATE erp.lots SET status = 'on_hold', status_changed_at = p_now
     WHERE expires_on <= (p_now AT TIME ZONE 'UTC')::date
       AND status IN ('quarantine', 'released');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE VIEW erp.lots_expiry AS
    SELECT l.id AS lot_id, l.lot_number, l.status, l.expires_on,
           l.expires_on <= current_date AS expired,
           l.expires_on > current_date
             AND l.expires_on <= current_date + p.near_expiry_days AS near_expiry
      FROM erp.lots l CROSS JOIN erp.retention_policy p;
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(_SQL)


def downgrade() -> None:
    op.execute(
        "DROP VIEW erp.lots_expiry; DROP FUNCTION erp.lock_expired_lots(timestamptz); DROP FUNCTION erp.retention_run(timestamptz, timestamptz);"
        " DROP VIEW erp.protected_ranges; DROP FUNCTION erp.lot_retained_until(bigint);"
        " DROP TRIGGER lots_require_decision ON erp.lots; DROP FUNCTION erp.lots_require_decision();"
        " DROP TABLE erp.retention_policy, erp.release_decisions;"
        " DROP TRIGGER excursion_opens_deviations ON telemetry.excursion_episodes;"
        " DROP FUNCTION erp.open_deviations_for_episode(); DROP TABLE erp.deviations, erp.inspections;"
    )
