"""Users, roles and logins: who may use the ERP and what each role may do.

``models`` holds the value types, ``rules`` the pure rules (separation of duties, login
limiting), ``password_policy`` the pure rules for new passwords, ``passwords``/``tokens``
the argon2 and JWT adapters, ``service`` the user functions, ``attempts`` the login
history and checks in progress in the database, ``gate`` the sign-in path (bounded
argon2 and pool use), ``binding`` the pure MAC that binds each stored hash to the record
key, ``resets`` the two-person resets of accounts that sign, ``accounts`` the
administrators' operations that keep to that rule, and ``api`` the HTTP views. The
FastAPI dependencies live in ``erp_core.deps``.
"""
