"""What the plant's telemetry looks like right now: sensors, readings, gateways, dead letters.

Read-only views over the ``telemetry`` schema that ingest writes; ``erp_core`` and
``ingest`` meet only in that schema.
"""
