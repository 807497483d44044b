-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj04_change_column_type');
-- THE SAFE WAY, step 1: a nullable column is a catalog-only change (a brief
-- ACCESS EXCLUSIVE, no scan, no rewrite). The trigger fills created_at_new for
-- every row written from now on, so the backfill (0004) only has to cover the
-- rows that existed before, and 0005 never meets a NULL written meanwhile.
-- The function pins TimeZone so the conversion does not depend on the writer's
-- session, and it works whether created_at is varchar or already timestamptz.
-- banner: Adding column created_at_new
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Adding SmallRecord.created_at_new (nullable)... | ✓ SmallRecord.created_at_new added
ALTER TABLE small_record ADD COLUMN created_at_new timestamptz NULL;
-- step: Adding LargeRecord.created_at_new (nullable)... | ✓ LargeRecord.created_at_new added
ALTER TABLE large_record ADD COLUMN created_at_new timestamptz NULL;
-- step: Installing the trigger that fills created_at_new on write... | ✓ created_at_new kept in sync for new writes
CREATE FUNCTION sync_created_at_new() RETURNS trigger
    LANGUAGE plpgsql
    SET TimeZone = 'UTC'
AS $$
BEGIN
    NEW.created_at_new := NEW.created_at::timestamptz;
    RETURN NEW;
END
$$;
CREATE TRIGGER small_record_sync_created_at_new
    BEFORE INSERT OR UPDATE OF created_at ON small_record
    FOR EACH ROW EXECUTE FUNCTION sync_created_at_new();
CREATE TRIGGER large_record_sync_created_at_new
    BEFORE INSERT OR UPDATE OF created_at ON large_record
    FOR EACH ROW EXECUTE FUNCTION sync_created_at_new();
