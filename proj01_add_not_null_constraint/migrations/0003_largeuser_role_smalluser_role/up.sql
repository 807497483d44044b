-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj01_add_not_null_constraint');
-- THE SAFE WAY, step 1: a nullable column without a default is catalog-only:
-- existing rows read NULL (the backfill, 0004, fills them). The default is
-- set in a second statement so it applies to rows written from now on only,
-- and neither 0004 nor 0005 ever meets a NULL written meanwhile.
-- banner: Adding role field (nullable)
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Adding SmallUser.role (nullable)... | ✓ SmallUser.role added
ALTER TABLE small_user ADD COLUMN role varchar(20) NULL;
ALTER TABLE small_user ALTER COLUMN role SET DEFAULT 'user';
-- step: Adding LargeUser.role (nullable)... | ✓ LargeUser.role added
ALTER TABLE large_user ADD COLUMN role varchar(20) NULL;
ALTER TABLE large_user ALTER COLUMN role SET DEFAULT 'user';
