-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj01_add_not_null_constraint');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping LargeUser table... | ✓ LargeUser table dropped
DROP TABLE large_user;
-- step: Dropping SmallUser table... | ✓ SmallUser table dropped
DROP TABLE small_user;
DROP SCHEMA risky_migrations CASCADE;
