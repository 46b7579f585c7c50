"""A lot's temperature history and statistics (MKT, time out of range, coverage).

``history`` reads the one SQL definition (``erp.lot_readings``) and builds the answer,
``exposure`` is the pure statistics, ``lead_in`` the held value at arrival, ``rollup``
and ``rollup_refresh`` the hourly/daily fast path, ``columns`` numpy columns packed by
PostgreSQL, ``models`` the answer's types, ``api`` the HTTP view. Read by release.
"""
