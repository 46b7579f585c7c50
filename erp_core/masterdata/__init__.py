"""Master data: items, locations, sensor assignments, reader mappings — what evidence means.

``models`` holds the value types, ``service`` creates and reads them, ``changes``
updates, retires and swaps under the rules that protect recorded history, ``evidence``
the rule that a signed release decision freezes the history it was based on (also
checked by movements and shipments), ``api`` the HTTP views, ``pages`` and
``location_pages`` the HTML pages (``browse`` what they read, ``forms`` their
refusals). The lowest ERP domain: it imports no other stock domain (docs/erp-stock.md,
"Domain packages").
"""
