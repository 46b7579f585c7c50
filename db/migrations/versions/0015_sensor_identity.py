"""Sensors are identified per gateway: unique on (gateway_id, uid, quantity), gateway required.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Sensors were matched by (uid, quantity) across all gateways, so any gateway could send
readings for another gateway's ``fridge-1``, and the first reading at a timestamp won
(issue 9). Now a reading's sensor is the one of the gateway that sent it, and every
sensor names its gateway.

Rows without a gateway (registered by hand before any reading) are given one where the
evidence is unambiguous: the one gateway whose last state message lists the device, or
the only gateway there is. The rest get ``(unassigned)``, a value no gateway can have
(it is not a valid topic level): they keep their history and assignments, no gateway's
readings land on them, and they are logged so an operator can assign them
(docs/wire-contract.md, "Sensor identity").
"""

import logging

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UNASSIGNED = "(unassigned)"

BACKFILL = """
-- 1. the one gateway whose last state lists the device (gateway health: sensors[].sensor)
UPDATE telemetry.sensors s
   SET gateway_id = c.gateway_id
  FROM (SELECT x.uid, min(g.id) AS gateway_id
          FROM telemetry.gateways g
         CROSS JOIN LATERAL jsonb_array_elements(
                   CASE WHEN jsonb_typeof(g.state -> 'sensors') = 'array'
                        THEN g.state -> 'sensors' ELSE '[]'::jsonb END) AS e
         CROSS JOIN LATERAL (SELECT e ->> 'sensor' AS uid) AS x
         WHERE x.uid IS NOT NULL
         GROUP BY x.uid
        HAVING count(DISTINCT g.id) = 1) c
 WHERE s.gateway_id IS NULL AND s.uid = c.uid;
-- 2. a plant with a single gateway
UPDATE telemetry.sensors
   SET gateway_id = (SELECT min(id) FROM telemetry.gateways)
 WHERE gateway_id IS NULL AND (SELECT count(*) FROM telemetry.gateways) = 1;
"""

CONSTRAINTS = """
ALTER TABLE telemetry.sensors ALTER COLUMN gateway_id SET NOT NULL;
ALTER TABLE telemetry.sensors DROP CONSTRAINT sensors_uid_quantity_key;
ALTER TABLE telemetry.sensors
  ADD CONSTRAINT sensors_gateway_uid_quantity_key UNIQUE (gateway_id, uid, quantity);
COMMENT ON COLUMN telemetry.sensors.gateway_id IS
    'The gateway whose readings this sensor receives (a device id is unique per gateway only); '
    '''(unassigned)'' for a sensor registered by hand that no gateway feeds.';
"""


def upgrade() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql(BACKFILL)
    rows = bind.exec_driver_sql(
        "UPDATE telemetry.sensors SET gateway_id = %s WHERE gateway_id IS NULL "
        "RETURNING id, uid, quantity",
        (UNASSIGNED,),
    ).fetchall()
    for sensor_id, uid, quantity in rows:
        logging.getLogger("alembic").warning(
            "sensor %s (%s %s) has no gateway: marked %s; no readings reach it until it is "
            "assigned (UPDATE telemetry.sensors SET gateway_id = '<gateway>' WHERE id = %s)",
            sensor_id,
            uid,
            quantity,
            UNASSIGNED,
            sensor_id,
        )
    bind.exec_driver_sql(CONSTRAINTS)


def downgrade() -> None:
    # (uid, quantity) may no longer be unique: the downgrade fails on such rows, loudly
    op.execute(
        """
        ALTER TABLE telemetry.sensors DROP CONSTRAINT sensors_gateway_uid_quantity_key;
        ALTER TABLE telemetry.sensors ADD CONSTRAINT sensors_uid_quantity_key UNIQUE (uid, quantity);
        ALTER TABLE telemetry.sensors ALTER COLUMN gateway_id DROP NOT NULL;
        UPDATE telemetry.sensors SET gateway_id = NULL WHERE gateway_id = '(unassigned)';
        """
    )
