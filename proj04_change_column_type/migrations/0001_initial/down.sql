-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj04_change_column_type');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping LargeRecord table... | ✓ LargeRecord table dropped
DROP TABLE large_record;
-- step: Dropping SmallRecord table... | ✓ SmallRecord table dropped
DROP TABLE small_record;
DROP SCHEMA risky_migrations CASCADE;
