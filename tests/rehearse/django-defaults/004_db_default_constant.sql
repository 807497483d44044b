-- state = models.CharField(max_length=10, db_default='draft'): a constant,
-- kept (Django 5's db_default stays in the database).
ALTER TABLE invoices ADD COLUMN state varchar(10) DEFAULT 'draft' NOT NULL;
