-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj03_indexes');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallEmail table... | ✓ SmallEmail table dropped
DROP TABLE small_email;
-- step: Dropping LargeEmail table... | ✓ LargeEmail table dropped
DROP TABLE large_email;
DROP SCHEMA risky_migrations CASCADE;
