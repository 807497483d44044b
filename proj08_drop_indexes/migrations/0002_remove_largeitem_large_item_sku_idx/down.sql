-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj08_drop_indexes');
-- Django's way back (AddIndex): a plain build, SHARE on the table for the
-- whole build (writes wait). Where 0002 was recorded with --fake or 0003
-- already put the index back, it is there and nothing is built.
-- banner: Adding index large_item_sku_idx back
SET LOCAL lock_timeout = '1s';
-- step: Creating index large_item_sku_idx on LargeItem... | ✓ LargeItem index created
CREATE INDEX IF NOT EXISTS large_item_sku_idx ON large_item (sku);
COMMENT ON TABLE large_item IS NULL;
