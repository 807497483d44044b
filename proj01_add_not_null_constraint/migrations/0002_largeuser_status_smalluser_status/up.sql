-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj01_add_not_null_constraint');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE SEED'S "WRONG WAY": what Django emits for a new field with
-- default="active": add the column NOT NULL DEFAULT, then drop the default.
-- Since PostgreSQL 11 a constant default is stored in the catalog, so this no
-- longer rewrites the table; but it still needs ACCESS EXCLUSIVE, and behind
-- any long transaction on the table it queues, and every query queues behind
-- it. The lab measures which of the two this run shows.
-- banner: Adding status field
-- step: Adding SmallUser.status (NOT NULL DEFAULT 'active')... | ✓ SmallUser.status added
ALTER TABLE small_user ADD COLUMN status varchar(20) DEFAULT 'active' NOT NULL;
ALTER TABLE small_user ALTER COLUMN status DROP DEFAULT;
-- step: Adding LargeUser.status (NOT NULL DEFAULT 'active')... | ✓ LargeUser.status added
ALTER TABLE large_user ADD COLUMN status varchar(20) DEFAULT 'active' NOT NULL;
ALTER TABLE large_user ALTER COLUMN status DROP DEFAULT;
