-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj09_alter_defaults');
-- THE SAFE WAY, step 1: the same kind of column under another name, so
-- both ways can run on one table. Added nullable and without a default, it
-- is catalog-only: existing rows read NULL until the backfill (0004) gives
-- each its own value. The default is set in a second statement, so it
-- applies to rows written from now on only: SET DEFAULT never rewrites,
-- whatever the expression. Both statements still take ACCESS EXCLUSIVE for
-- a moment: behind a long transaction they would queue, and every query
-- behind them, so each waits at most 1 s for its lock (manage retries).
-- banner: Adding public_ref field (nullable)
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Adding SmallInvoice.public_ref (nullable)... | ✓ SmallInvoice.public_ref added
ALTER TABLE small_invoice ADD COLUMN public_ref uuid NULL;
ALTER TABLE small_invoice ALTER COLUMN public_ref SET DEFAULT gen_random_uuid();
-- step: Adding LargeInvoice.public_ref (nullable)... | ✓ LargeInvoice.public_ref added
ALTER TABLE large_invoice ADD COLUMN public_ref uuid NULL;
ALTER TABLE large_invoice ALTER COLUMN public_ref SET DEFAULT gen_random_uuid();
