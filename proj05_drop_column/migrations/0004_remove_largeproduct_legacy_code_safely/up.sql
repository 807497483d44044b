-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- THE SAFE WAY, step 2 (contract): release 2 no longer names legacy_code,
-- so the drop breaks nothing. Catalog-only, a brief ACCESS EXCLUSIVE bounded
-- by lock_timeout (manage retries it). The table's comment records that this
-- migration dropped the column, so its way down adds it back only then
-- (where 0002 really ran, 0002's own way down does).
-- banner: Dropping legacy_code field (no code uses it)
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping legacy_code column from SmallProduct... | ✓ SmallProduct column dropped
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'small_product' AND column_name = 'legacy_code') THEN
        ALTER TABLE small_product DROP COLUMN legacy_code;
        COMMENT ON TABLE small_product IS 'legacy_code dropped by 0004';
    END IF;
END $$;
-- step: Dropping legacy_code column from LargeProduct... | ✓ LargeProduct column dropped
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'large_product' AND column_name = 'legacy_code') THEN
        ALTER TABLE large_product DROP COLUMN legacy_code;
        COMMENT ON TABLE large_product IS 'legacy_code dropped by 0004';
    END IF;
END $$;
