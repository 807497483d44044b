-- Not Django's (its Now() is statement_timestamp()): clock_timestamp() is
-- volatile, and rewrites as gen_random_uuid() does.
ALTER TABLE invoices ADD COLUMN touched_at timestamptz DEFAULT clock_timestamp() NOT NULL;
