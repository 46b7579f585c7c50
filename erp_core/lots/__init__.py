"""Lots: a quantity of one item, its status along the release workflow, its RFID tags.

``models`` holds the value types, ``status`` the pure workflow, ``service`` creates,
reads, finds (GTIN + lot number) and changes status, ``tags`` registers and resolves
RFID tags, ``api`` the HTTP views. Imports master data only.
"""
