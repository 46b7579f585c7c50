"""Four-eyes override of failed release rules, enforced by the database.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06

Before, one QA manager could release a lot whose release rules failed, with a written
justification and her own signature (issue 11). Now an override takes two different QA
managers:

* ``erp.release_overrides``: a QA manager *proposes* the override — the justification,
  the failed rules with their evidence as she saw them, and her signature (meaning
  "Proposed override", record ``erp.release_overrides``). Append-only
  and audited; the database refuses a proposer who is not an active ``qa_manager``, a
  signature that is not hers for this lot, and a proposal without a failed rule.
* ``erp.release_decisions.override_id``: a decision with verdict ``override`` names the
  proposal it approves; trigger ``release_decisions_four_eyes`` refuses it unless the
  decision's signer is an active ``qa_manager`` *other than the proposer*, signed it
  with the meaning "Approved override", the proposal is of this lot, was
  made since the lot's last status change, carries the same justification, and every
  rule the decision records as failed was failed in the proposal. A proposal is
  approved at most once (unique). A decision that is not an override names no
  proposal, and a release ``allowed`` records no failed rule. So an override by one QA
  manager alone is refused even to the application role writing SQL directly, and
  ``erp.lots_require_decision`` (0007) keeps the lot from becoming released without it.

The signatures' HMACs are checked by the server (the key is not in the database):
``erp_core.release.records``. Privileges: ``db/grants.py``, applied by ``coldtrace db
upgrade``.
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE erp.release_overrides (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id          bigint NOT NULL REFERENCES erp.lots (id),
    justification   text NOT NULL CHECK (length(btrim(justification)) >= 20),
    failed_rules    jsonb NOT NULL CHECK (jsonb_typeof(failed_rules) = 'array'
                                          AND jsonb_array_length(failed_rules) > 0),
    proposed_by     text NOT NULL,
    proposed_by_id  integer NOT NULL REFERENCES erp.users (id),
    proposed_at     timestamptz NOT NULL,
    signature_id    bigint NOT NULL  -- erp.signatures(id), checked by the trigger
);
CREATE INDEX release_overrides_lot ON erp.release_overrides (lot_id);
COMMENT ON TABLE erp.release_overrides IS
    'Overrides of failed release rules proposed by one QA manager (signed), pending until a '
    'second, different QA manager approves one with a release decision (override_id); '
    'erp_core.release.overrides';

CREATE FUNCTION erp.release_overrides_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM erp.users AS u JOIN erp.user_roles AS r ON r.user_id = u.id
         WHERE u.id = NEW.proposed_by_id AND u.username = NEW.proposed_by
           AND u.active AND r.role = 'qa_manager') THEN
        RAISE EXCEPTION 'override of lot %: % is not an active qa_manager', NEW.lot_id,
            NEW.proposed_by
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_override_proposer_role';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM erp.signatures AS s
         WHERE s.id = NEW.signature_id AND s.user_id = NEW.proposed_by_id
           AND s.record_table = 'erp.release_overrides'
           AND s.record_key ->> 'lot_id' = NEW.lot_id::text
           AND s.meaning = 'Proposed override') THEN
        RAISE EXCEPTION 'override of lot %: signature % is not %''s proposal of it',
            NEW.lot_id, NEW.signature_id, NEW.proposed_by
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_override_signature';
    END IF;
    IF NOT NEW.failed_rules @> '[{"passed": false}]' THEN
        RAISE EXCEPTION 'override of lot %: no failed rule to override', NEW.lot_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_override_failed_rules';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER release_overrides_check BEFORE INSERT ON erp.release_overrides
    FOR EACH ROW EXECUTE FUNCTION erp.release_overrides_check();
CREATE TRIGGER release_overrides_append_only BEFORE UPDATE OR DELETE ON erp.release_overrides
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('override proposals are append-only');
SELECT erp.audit_table('erp.release_overrides');

ALTER TABLE erp.release_decisions
    ADD COLUMN override_id bigint UNIQUE REFERENCES erp.release_overrides (id);
COMMENT ON COLUMN erp.release_decisions.override_id IS
    'The proposal (erp.release_overrides) that an override decision approves; NULL otherwise';

CREATE FUNCTION erp.release_decisions_four_eyes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_prop    erp.release_overrides;
    v_signer  erp.signatures;
    v_since   timestamptz;
BEGIN
    IF NEW.verdict <> 'override' THEN
        IF NEW.override_id IS NOT NULL THEN
            RAISE EXCEPTION 'a % decision approves no override proposal', NEW.verdict
                USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_override_id';
        END IF;
        IF NEW.action = 'release' AND NEW.recommendation @> '[{"passed": false}]' THEN
            RAISE EXCEPTION 'lot %: a release with failed rules is an override, which needs '
                'a second qa_manager', NEW.lot_id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
        END IF;
        RETURN NEW;
    END IF;
    IF jsonb_typeof(NEW.recommendation) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'lot %: an override records the rules it overrides', NEW.lot_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    SELECT * INTO v_prop FROM erp.release_overrides WHERE id = NEW.override_id;
    IF NOT FOUND OR v_prop.lot_id <> NEW.lot_id OR NEW.action <> 'release' THEN
        RAISE EXCEPTION 'lot %: an override is released only by a second qa_manager approving '
            'a proposal of this lot', NEW.lot_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    SELECT * INTO v_signer FROM erp.signatures WHERE id = NEW.signature_id;
    IF NOT FOUND OR v_signer.username <> NEW.decided_by
       OR v_signer.record_table <> 'erp.release_decisions'
       OR v_signer.meaning <> 'Approved override' THEN
        RAISE EXCEPTION 'lot %: signature % is not %''s approval of the override', NEW.lot_id,
            NEW.signature_id, NEW.decided_by
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    IF v_signer.user_id = v_prop.proposed_by_id OR NEW.decided_by = v_prop.proposed_by THEN
        RAISE EXCEPTION 'lot %: % proposed this override and cannot also approve it '
            '(four eyes: a second, different qa_manager)', NEW.lot_id, NEW.decided_by
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM erp.users AS u JOIN erp.user_roles AS r ON r.user_id = u.id
         WHERE u.id = v_signer.user_id AND u.active AND r.role = 'qa_manager') THEN
        RAISE EXCEPTION 'lot %: % is not an active qa_manager', NEW.lot_id, NEW.decided_by
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    SELECT status_changed_at INTO v_since FROM erp.lots WHERE id = NEW.lot_id;
    IF v_prop.proposed_at < v_since THEN
        RAISE EXCEPTION 'lot %: override proposal % predates the lot''s last status change',
            NEW.lot_id, v_prop.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    IF NEW.justification IS DISTINCT FROM v_prop.justification THEN
        RAISE EXCEPTION 'lot %: the approval carries another justification than the proposal',
            NEW.lot_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    IF EXISTS (
        SELECT 1 FROM jsonb_array_elements(NEW.recommendation) AS f
         WHERE (f ->> 'passed')::boolean IS false
           AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v_prop.failed_rules) AS p
                            WHERE p ->> 'rule' = f ->> 'rule')) THEN
        RAISE EXCEPTION 'lot %: a rule failed that the override proposal did not name',
            NEW.lot_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'release_decision_four_eyes';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER release_decisions_four_eyes BEFORE INSERT ON erp.release_decisions
    FOR EACH ROW EXECUTE FUNCTION erp.release_decisions_four_eyes();
"""

DOWNGRADE = """
DROP TRIGGER release_decisions_four_eyes ON erp.release_decisions;
DROP FUNCTION erp.release_decisions_four_eyes();
ALTER TABLE erp.release_decisions DROP COLUMN override_id;
DROP TABLE erp.release_overrides;
DROP FUNCTION erp.release_overrides_check();
"""


def _run(sql: str) -> None:
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
