-- issued_at = models.DateTimeField(db_default=Now()): statement_timestamp()
-- is stable, not volatile: one value for the statement, kept in the catalog.
ALTER TABLE invoices ADD COLUMN issued_at timestamp with time zone DEFAULT (STATEMENT_TIMESTAMP()) NOT NULL;
