"""The tamper-evident audit trail: written by database triggers, verified and anchored here.

The SQL lives in migrations 0004 and 0018 (``erp.audit_table``, ``erp.audit_row``,
``erp.audit_append``); ``chain`` recomputes entry hashes independently of the database,
``service`` sets the acting user per transaction, reads the trail and verifies the chain,
``keys`` reads the record key file (outside the database), ``anchor`` and ``anchoring``
write and check the signed checkpoints that a re-hashed chain cannot match.
"""
