-- db_default='draft' changed to 'open': SET DEFAULT, catalog-only, under
-- ACCESS EXCLUSIVE. (Changing a field's default=, kept in Python, is
-- "-- (no-op)": no SQL at all.)
ALTER TABLE invoices ALTER COLUMN state SET DEFAULT 'open';
