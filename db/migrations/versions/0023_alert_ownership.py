"""The alert lifecycle belongs to ingest: others change alerts through its functions.

``telemetry.alerts`` and ``telemetry.alert_events`` are ingest's tables. Before this
revision the ERP wrote both with its own INSERT and UPDATE, and "appending an alert
event" was written twice. Now:

* ``telemetry.alert_append_event(alert, event, at, actor, detail)`` appends one event
  (``opened``, ``updated`` or ``escalated``) at the alert's current escalation level;
  the evaluator, the escalation job and the sweep all call it. The application role
  loses INSERT on ``telemetry.alert_events``: every row comes from these functions.
* ``telemetry.alert_acknowledge(alert, actor, comment, at)`` and
  ``telemetry.alert_close(alert, actor, disposition, comment, at)`` make the lifecycle
  step and append its ``acknowledged``/``closed`` event in one statement each; the ERP
  calls them after ``coldchain.alert_states.refusal`` said yes under a row lock. They
  refuse (check_violation) a step the alert's state does not allow, so a caller that
  skips the rule cannot skip the guard either.
* a trigger refuses any other change of the lifecycle columns (status, who and when
  acknowledged or closed, disposition, comments): the evaluator keeps UPDATE on the
  figures it maintains (peak, duration, end, detail, escalation level), but only the
  owner's functions move an alert along open → acknowledged → closed.

The functions are SECURITY DEFINER with a fixed search_path; ``db/grants.py`` gives the
application role EXECUTE (applied by ``coldtrace db upgrade`` after every migration).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_SQL = """
CREATE FUNCTION telemetry.alert_append_event(
    p_alert bigint, p_event text, p_at timestamptz, p_actor text, p_detail jsonb
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id bigint;
BEGIN
    IF p_event NOT IN ('opened', 'updated', 'escalated') THEN
        RAISE EXCEPTION 'alert event % is written only by its lifecycle step', p_event
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO telemetry.alert_events (alert_id, event, level, at, actor, detail)
    SELECT id, p_event, escalation_level, p_at, p_actor, coalesce(p_detail, '{}')
      FROM telemetry.alerts WHERE id = p_alert
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'no alert %', p_alert USING ERRCODE = 'no_data_found';
    END IF;
    RETURN v_id;
END $$;

CREATE FUNCTION telemetry.alert_acknowledge(
    p_alert bigint, p_actor text, p_comment text, p_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_detail jsonb;
    v_id bigint;
BEGIN
    IF coalesce(btrim(p_actor), '') = '' OR coalesce(btrim(p_comment), '') = '' THEN
        RAISE EXCEPTION 'an acknowledgement needs a named person and a comment'
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE telemetry.alerts
       SET status = 'acknowledged', acknowledged_at = p_at, acknowledged_by = p_actor,
           ack_comment = p_comment, updated_at = p_at
     WHERE id = p_alert AND status = 'open'
    RETURNING detail INTO v_detail;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % is not open', p_alert USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO telemetry.alert_events (alert_id, event, level, at, actor, detail)
    SELECT id, 'acknowledged', escalation_level, p_at, p_actor,
           v_detail || jsonb_build_object('comment', p_comment)
      FROM telemetry.alerts WHERE id = p_alert
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

CREATE FUNCTION telemetry.alert_close(
    p_alert bigint, p_actor text, p_disposition text, p_comment text, p_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_detail jsonb;
    v_id bigint;
BEGIN
    IF coalesce(btrim(p_actor), '') = '' OR coalesce(btrim(p_comment), '') = ''
       OR coalesce(btrim(p_disposition), '') = '' THEN
        RAISE EXCEPTION 'a close needs a named person, a disposition and a comment'
            USING ERRCODE = 'check_violation';
    END IF;
    UPDATE telemetry.alerts
       SET status = 'closed', closed_at = p_at, closed_by = p_actor,
           disposition = p_disposition, close_comment = p_comment, updated_at = p_at
     WHERE id = p_alert AND status = 'acknowledged' AND ended_at IS NOT NULL
    RETURNING detail INTO v_detail;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % is not acknowledged and ended', p_alert
            USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO telemetry.alert_events (alert_id, event, level, at, actor, detail)
    SELECT id, 'closed', escalation_level, p_at, p_actor,
           v_detail || jsonb_build_object('disposition', p_disposition, 'comment', p_comment)
      FROM telemetry.alerts WHERE id = p_alert
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;

-- Only the owner (in practice: the two functions above) changes the lifecycle columns.
CREATE FUNCTION telemetry.alerts_lifecycle_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_owner name;
BEGIN
    SELECT pg_get_userbyid(relowner) INTO v_owner FROM pg_class WHERE oid = TG_RELID;
    IF current_user = v_owner THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'open' OR NEW.acknowledged_at IS NOT NULL
           OR NEW.acknowledged_by IS NOT NULL OR NEW.ack_comment IS NOT NULL
           OR NEW.closed_at IS NOT NULL OR NEW.closed_by IS NOT NULL
           OR NEW.disposition IS NOT NULL OR NEW.close_comment IS NOT NULL THEN
            RAISE EXCEPTION 'a new alert is open: acknowledge or close it through '
                'telemetry.alert_acknowledge / telemetry.alert_close'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF (NEW.status, NEW.acknowledged_at, NEW.acknowledged_by, NEW.ack_comment,
           NEW.closed_at, NEW.closed_by, NEW.disposition, NEW.close_comment)
          IS DISTINCT FROM
          (OLD.status, OLD.acknowledged_at, OLD.acknowledged_by, OLD.ack_comment,
           OLD.closed_at, OLD.closed_by, OLD.disposition, OLD.close_comment) THEN
        RAISE EXCEPTION 'alert % changes its status only through telemetry.alert_acknowledge '
            '/ telemetry.alert_close', OLD.id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER alerts_lifecycle_guard BEFORE INSERT OR UPDATE ON telemetry.alerts
    FOR EACH ROW EXECUTE FUNCTION telemetry.alerts_lifecycle_guard();
"""


def upgrade() -> None:
    op.get_bind().connection.driver_connection.execute(_SQL)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER alerts_lifecycle_guard ON telemetry.alerts;"
        " DROP FUNCTION telemetry.alerts_lifecycle_guard();"
        " DROP FUNCTION telemetry.alert_close(bigint, text, text, text, timestamptz);"
        " DROP FUNCTION telemetry.alert_acknowledge(bigint, text, text, timestamptz);"
        " DROP FUNCTION telemetry.alert_append_event(bigint, text, timestamptz, text, jsonb);"
    )
