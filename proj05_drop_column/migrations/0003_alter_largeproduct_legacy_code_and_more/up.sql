-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- THE SAFE WAY, step 1 (expand): legacy_code nullable, so that a release
-- that no longer writes it can still insert. Catalog-only: a brief ACCESS
-- EXCLUSIVE, bounded by lock_timeout. Then release 2 is deployed: it stops
-- reading and writing the column. (Where 0002 really ran, there is no
-- column left to change.)
-- banner: Making legacy_code nullable
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Making SmallProduct.legacy_code nullable... | ✓ SmallProduct.legacy_code nullable
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'small_product' AND column_name = 'legacy_code') THEN
        ALTER TABLE small_product ALTER COLUMN legacy_code DROP NOT NULL;
    END IF;
END $$;
-- step: Making LargeProduct.legacy_code nullable... | ✓ LargeProduct.legacy_code nullable
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'large_product' AND column_name = 'legacy_code') THEN
        ALTER TABLE large_product ALTER COLUMN legacy_code DROP NOT NULL;
    END IF;
END $$;
