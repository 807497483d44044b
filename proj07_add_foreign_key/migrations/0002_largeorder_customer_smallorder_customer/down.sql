-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj07_add_foreign_key');
-- banner: Removing foreign key customer
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Removing FK customer from LargeOrder... | ✓ LargeOrder FK removed
ALTER TABLE large_order DROP CONSTRAINT IF EXISTS large_order_customer_id_96b7b144_fk_customer_id;
-- step: Removing FK customer from SmallOrder... | ✓ SmallOrder FK removed
ALTER TABLE small_order DROP CONSTRAINT IF EXISTS small_order_customer_id_8c7854fc_fk_customer_id;
