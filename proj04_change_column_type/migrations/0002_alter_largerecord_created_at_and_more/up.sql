-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj04_change_column_type');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE RISKY WAY. Changing varchar to timestamptz rewrites every row of the table
-- while ALTER TABLE holds ACCESS EXCLUSIVE: no read or write gets through until
-- it commits. This is what Django's AlterField emits; the lab measures its cost.
-- Text becomes timestamptz through the session's TimeZone, so it is pinned here.
-- banner: Changing column type
SET LOCAL TimeZone = 'UTC';
-- step: Changing SmallRecord.created_at from VARCHAR to DATETIME... | ✓ SmallRecord column type changed
ALTER TABLE small_record ALTER COLUMN created_at TYPE timestamptz USING created_at::timestamptz;
-- step: Changing LargeRecord.created_at from VARCHAR to DATETIME... | ✓ LargeRecord column type changed
ALTER TABLE large_record ALTER COLUMN created_at TYPE timestamptz USING created_at::timestamptz;
