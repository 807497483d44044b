-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj06_large_backfills');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallAccount table... | ✓ SmallAccount table dropped
DROP TABLE small_account;
-- step: Dropping LargeAccount table... | ✓ LargeAccount table dropped
DROP TABLE large_account;
DROP SCHEMA risky_migrations CASCADE;
