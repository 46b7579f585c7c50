"""Deviations: a departure from the expected, recorded against a lot and closed signed.

The seed of the quality module (nonconformance and CAPA build on it). The database opens
a deviation for each alarm excursion that touches a lot (trigger of migration 0007);
``service`` opens the ones a late movement reveals, lists a lot's deviations and closes
one with a signed disposition; ``records`` checks those signatures against the record as
stored; ``api`` and ``templates`` show them. Release reads a lot's open deviations (an
open one blocks release); this package imports nothing of release.
"""
