-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj09_alter_defaults');
-- Dropping NOT NULL is catalog-only, so the way down is one short transaction
-- (explicit, since this migration's metadata turns diesel's off). The checks
-- are dropped too in case an interrupted way up left them behind.
-- banner: Relaxing NOT NULL on public_ref
BEGIN;
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping NOT NULL on LargeInvoice.public_ref... | ✓ LargeInvoice.public_ref nullable
ALTER TABLE large_invoice DROP CONSTRAINT IF EXISTS large_invoice_public_ref_not_null;
ALTER TABLE large_invoice ALTER COLUMN public_ref DROP NOT NULL;
-- step: Dropping NOT NULL on SmallInvoice.public_ref... | ✓ SmallInvoice.public_ref nullable
ALTER TABLE small_invoice DROP CONSTRAINT IF EXISTS small_invoice_public_ref_not_null;
ALTER TABLE small_invoice ALTER COLUMN public_ref DROP NOT NULL;
COMMIT;
