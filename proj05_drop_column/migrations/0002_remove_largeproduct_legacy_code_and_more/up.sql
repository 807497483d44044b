-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE ORIGINAL'S "WRONG WAY": RemoveField as Django emits it, while the
-- running release still reads and writes the column. The drop itself is
-- catalog-only (no rewrite: the values stay on disk, invisible, until rows
-- are rewritten) and holds ACCESS EXCLUSIVE only for a moment, unless it
-- queues behind a long transaction. What breaks is the code: every query of
-- the running release that names legacy_code fails from the drop until a
-- release without it is deployed, or the column comes back (empty: the way
-- down cannot bring its values back).
-- banner: Dropping legacy_code field
-- step: Dropping legacy_code column from SmallProduct... | ✓ SmallProduct column dropped
ALTER TABLE small_product DROP COLUMN legacy_code CASCADE;
-- step: Dropping legacy_code column from LargeProduct... | ✓ LargeProduct column dropped
ALTER TABLE large_product DROP COLUMN legacy_code CASCADE;
