-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- The column back (nullable, as 0003 left it), where this migration dropped
-- it; its values are gone.
-- banner: Adding legacy_code field back
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Adding legacy_code column back to LargeProduct... | ✓ LargeProduct column added
DO $$
BEGIN
    IF obj_description('large_product'::regclass, 'pg_class') = 'legacy_code dropped by 0004' THEN
        ALTER TABLE large_product ADD COLUMN legacy_code varchar(50) NULL;
        COMMENT ON TABLE large_product IS NULL;
    END IF;
END $$;
-- step: Adding legacy_code column back to SmallProduct... | ✓ SmallProduct column added
DO $$
BEGIN
    IF obj_description('small_product'::regclass, 'pg_class') = 'legacy_code dropped by 0004' THEN
        ALTER TABLE small_product ADD COLUMN legacy_code varchar(50) NULL;
        COMMENT ON TABLE small_product IS NULL;
    END IF;
END $$;
