-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj09_alter_defaults');
-- banner: Removing public_ref field
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Removing LargeInvoice.public_ref... | ✓ LargeInvoice.public_ref removed
ALTER TABLE large_invoice DROP COLUMN public_ref;
-- step: Removing SmallInvoice.public_ref... | ✓ SmallInvoice.public_ref removed
ALTER TABLE small_invoice DROP COLUMN public_ref;
