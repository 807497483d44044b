-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj09_alter_defaults');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallInvoice table... | ✓ SmallInvoice table dropped
DROP TABLE small_invoice;
-- step: Dropping LargeInvoice table... | ✓ LargeInvoice table dropped
DROP TABLE large_invoice;
DROP SCHEMA risky_migrations CASCADE;
