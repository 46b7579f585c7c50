"""Scans and tag reads from the gateways become stock movements, each exactly once.

``service`` processes the queue that a trigger fills (a job, ``coldtrace erp-jobs``),
``models`` the outcome type, ``api`` the outcomes, retries and tag registry, ``pages``
the ``/scans`` page. Imports master data, lots and movements.
"""
