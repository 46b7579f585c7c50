"""The tamper-evident audit trail: written by database triggers, verified from Python.

The SQL lives in migration 0004 (``erp.audit_table``, ``erp.audit_row``,
``erp.audit_append``); ``chain`` recomputes entry hashes independently of the database,
``service`` sets the acting user per transaction, reads the trail and verifies the chain.
"""
