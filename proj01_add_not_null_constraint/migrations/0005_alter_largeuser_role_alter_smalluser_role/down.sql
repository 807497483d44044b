-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj01_add_not_null_constraint');
-- Dropping NOT NULL is catalog-only, so the way down is one short transaction
-- (explicit, since this migration's metadata turns diesel's off). The checks
-- are dropped too in case an interrupted way up left them behind.
-- banner: Relaxing NOT NULL on role
BEGIN;
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping NOT NULL on LargeUser.role... | ✓ LargeUser.role nullable
ALTER TABLE large_user DROP CONSTRAINT IF EXISTS large_user_role_not_null;
ALTER TABLE large_user ALTER COLUMN role DROP NOT NULL;
-- step: Dropping NOT NULL on SmallUser.role... | ✓ SmallUser.role nullable
ALTER TABLE small_user DROP CONSTRAINT IF EXISTS small_user_role_not_null;
ALTER TABLE small_user ALTER COLUMN role DROP NOT NULL;
COMMIT;
