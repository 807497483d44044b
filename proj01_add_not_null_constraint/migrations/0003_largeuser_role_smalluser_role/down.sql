-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj01_add_not_null_constraint');
-- banner: Removing role field
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Removing LargeUser.role... | ✓ LargeUser.role removed
ALTER TABLE large_user DROP COLUMN role;
-- step: Removing SmallUser.role... | ✓ SmallUser.role removed
ALTER TABLE small_user DROP COLUMN role;
