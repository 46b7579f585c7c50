"""21 CFR Part 11 electronic signatures bound to the hash of the signed record.

``canonical`` is the pure hashing and the signature manifestation, ``models`` the value
types and the request model an endpoint accepts, ``service`` signs (re-entering the
password) and verifies. Release and other regulated endpoints call ``service.sign`` in
their own transaction, so a decision, its signature and their audit entries commit
together.
"""
