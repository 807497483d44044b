-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj01_add_not_null_constraint');
-- banner: Removing status field
-- step: Removing LargeUser.status... | ✓ LargeUser.status removed
ALTER TABLE large_user DROP COLUMN status;
-- step: Removing SmallUser.status... | ✓ SmallUser.status removed
ALTER TABLE small_user DROP COLUMN status;
