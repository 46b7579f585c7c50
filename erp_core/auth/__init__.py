"""Users, roles and logins: who may use the ERP and what each role may do.

``models`` holds the value types, ``rules`` the pure rules (separation of duties, login
limiting), ``passwords``/``tokens`` the argon2 and JWT adapters, ``service`` the database
functions and ``api`` the HTTP views. The FastAPI dependencies live in ``erp_core.deps``.
"""
