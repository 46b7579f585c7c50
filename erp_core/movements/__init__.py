"""Movements: some quantity of a lot moved between locations at a device time.

``models`` holds the value types, ``backdating`` the checks that keep a lot's recorded
history consistent when a movement lands in the past, ``service`` records movements
(and turns a scan at a mapped reader into one), ``api`` the HTTP views. A stored
movement opens the deviations a late-known excursion would have opened
(``erp_core.deviations``). Imports master data, lots, deviations.
"""
