-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- Django's way back: the column again, NOT NULL with the field's default
-- ('') for the rows that exist: the codes themselves are gone. (Where 0002
-- was recorded with --fake, the column is still there.)
-- banner: Adding legacy_code field back
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Adding legacy_code column back to LargeProduct... | ✓ LargeProduct column added
ALTER TABLE large_product ADD COLUMN IF NOT EXISTS legacy_code varchar(50) DEFAULT '' NOT NULL;
ALTER TABLE large_product ALTER COLUMN legacy_code DROP DEFAULT;
-- step: Adding legacy_code column back to SmallProduct... | ✓ SmallProduct column added
ALTER TABLE small_product ADD COLUMN IF NOT EXISTS legacy_code varchar(50) DEFAULT '' NOT NULL;
ALTER TABLE small_product ALTER COLUMN legacy_code DROP DEFAULT;
