-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj04_change_column_type');
-- Back to varchar, in the seed's text format. The safe path records 0002 with
-- --fake, leaving created_at varchar: then there is nothing to convert, and this
-- must not rewrite the table, hence the type checks.
-- banner: Changing column type back
SET LOCAL TimeZone = 'UTC';
-- step: Changing LargeRecord.created_at from DATETIME to VARCHAR... | ✓ LargeRecord column type changed
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'large_record'::regclass AND attname = 'created_at') = 'timestamptz'::regtype THEN
        ALTER TABLE large_record ALTER COLUMN created_at TYPE varchar(50)
            USING to_char(created_at, 'YYYY-MM-DD HH24:MI:SS');
    END IF;
END $$;
-- step: Changing SmallRecord.created_at from DATETIME to VARCHAR... | ✓ SmallRecord column type changed
DO $$
BEGIN
    IF (SELECT atttypid FROM pg_attribute
        WHERE attrelid = 'small_record'::regclass AND attname = 'created_at') = 'timestamptz'::regtype THEN
        ALTER TABLE small_record ALTER COLUMN created_at TYPE varchar(50)
            USING to_char(created_at, 'YYYY-MM-DD HH24:MI:SS');
    END IF;
END $$;
