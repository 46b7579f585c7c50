"""Location compliance: does each ERP location's monitoring meet its regulatory profile."""
