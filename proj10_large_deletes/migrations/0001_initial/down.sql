-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj10_large_deletes');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallEvent table... | ✓ SmallEvent table dropped
DROP TABLE small_event;
-- step: Dropping LargeEvent table... | ✓ LargeEvent table dropped
DROP TABLE large_event;
DROP SCHEMA risky_migrations CASCADE;
