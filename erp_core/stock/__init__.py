"""ERP stock: items, lots, locations, sensor assignments, movements, shipments, lot history."""
