-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj08_drop_indexes');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE RISKY WAY: RemoveIndex as Django emits it, in the migration's
-- transaction, while the running release still searches by SKU. The drop
-- itself is quick, but it takes ACCESS EXCLUSIVE on the table: behind any
-- long transaction it queues, and every query on the table queues behind
-- it (`manage demo --hold-lock 5` shows it). The lasting harm comes after:
-- the search the index served becomes a sequential scan of the whole table
-- (its latency before and after is in this project's README).
-- banner: Removing index large_item_sku_idx
-- step: Dropping index large_item_sku_idx from LargeItem... | ✓ LargeItem index dropped
DROP INDEX IF EXISTS large_item_sku_idx;
-- The lab's bookkeeping, not Django's: 0003's way down builds the index
-- again only where 0003 dropped it, not where this migration did.
COMMENT ON TABLE large_item IS 'large_item_sku_idx dropped by 0002';
