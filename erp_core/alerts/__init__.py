"""Alerts as quality staff handle them: list, read, acknowledge, close with a disposition.

Ingest opens and updates alerts (``ingest.alerts``); this domain owns the human side of
the lifecycle. ``models`` holds the value types, ``service`` the database functions
(they never commit) and ``api`` the HTTP views.
"""
