-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj08_drop_indexes');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallItem table... | ✓ SmallItem table dropped
DROP TABLE small_item;
-- step: Dropping LargeItem table... | ✓ LargeItem table dropped
DROP TABLE large_item;
DROP SCHEMA risky_migrations CASCADE;
