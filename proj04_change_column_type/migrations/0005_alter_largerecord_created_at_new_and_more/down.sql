-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj04_change_column_type');
-- Dropping NOT NULL is catalog-only, so the way down is one short transaction
-- (explicit, since this migration's metadata turns diesel's off). The checks
-- are dropped too in case an interrupted way up left them behind.
-- banner: Relaxing NOT NULL on created_at_new
BEGIN;
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping NOT NULL on LargeRecord.created_at_new... | ✓ LargeRecord.created_at_new nullable
ALTER TABLE large_record DROP CONSTRAINT IF EXISTS large_record_created_at_new_not_null;
ALTER TABLE large_record ALTER COLUMN created_at_new DROP NOT NULL;
-- step: Dropping NOT NULL on SmallRecord.created_at_new... | ✓ SmallRecord.created_at_new nullable
ALTER TABLE small_record DROP CONSTRAINT IF EXISTS small_record_created_at_new_not_null;
ALTER TABLE small_record ALTER COLUMN created_at_new DROP NOT NULL;
COMMIT;
