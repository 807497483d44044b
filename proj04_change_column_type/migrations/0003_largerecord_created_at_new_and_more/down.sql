-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj04_change_column_type');
-- banner: Removing column created_at_new
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Removing the created_at_new sync trigger... | ✓ sync trigger removed
DROP TRIGGER large_record_sync_created_at_new ON large_record;
DROP TRIGGER small_record_sync_created_at_new ON small_record;
DROP FUNCTION sync_created_at_new();
-- step: Removing LargeRecord.created_at_new... | ✓ LargeRecord.created_at_new removed
ALTER TABLE large_record DROP COLUMN created_at_new;
-- step: Removing SmallRecord.created_at_new... | ✓ SmallRecord.created_at_new removed
ALTER TABLE small_record DROP COLUMN created_at_new;
