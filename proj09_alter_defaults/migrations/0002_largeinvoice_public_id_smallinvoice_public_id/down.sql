-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj09_alter_defaults');
-- (Where the safe path recorded 0002 with --fake, there is no column.)
-- banner: Removing public_id field
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Removing LargeInvoice.public_id... | ✓ LargeInvoice.public_id removed
ALTER TABLE large_invoice DROP COLUMN IF EXISTS public_id;
-- step: Removing SmallInvoice.public_id... | ✓ SmallInvoice.public_id removed
ALTER TABLE small_invoice DROP COLUMN IF EXISTS public_id;
