"""Production: bills of materials, work orders, material issue by scan, lot genealogy.

Tables (migration 0030): ``erp.boms``, ``erp.bom_lines``, ``erp.work_orders``,
``erp.material_issues``; the genealogy is one SQL definition, ``erp.lot_genealogy``,
over the view ``erp.genealogy_edges`` (docs/production.md).
"""
