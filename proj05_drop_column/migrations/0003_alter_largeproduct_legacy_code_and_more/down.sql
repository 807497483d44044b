-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- NOT NULL again: rows written without a code (by release 2) get '' first.
-- SET NOT NULL scans the table under ACCESS EXCLUSIVE: a way back, not a
-- step to take under traffic on a big table.
-- banner: Making legacy_code required again
SET LOCAL lock_timeout = '1s';
-- step: Making LargeProduct.legacy_code NOT NULL... | ✓ LargeProduct.legacy_code NOT NULL
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'large_product' AND column_name = 'legacy_code') THEN
        UPDATE large_product SET legacy_code = '' WHERE legacy_code IS NULL;
        ALTER TABLE large_product ALTER COLUMN legacy_code SET NOT NULL;
    END IF;
END $$;
-- step: Making SmallProduct.legacy_code NOT NULL... | ✓ SmallProduct.legacy_code NOT NULL
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'small_product' AND column_name = 'legacy_code') THEN
        UPDATE small_product SET legacy_code = '' WHERE legacy_code IS NULL;
        ALTER TABLE small_product ALTER COLUMN legacy_code SET NOT NULL;
    END IF;
END $$;
