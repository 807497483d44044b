-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj05_drop_column');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallProduct table... | ✓ SmallProduct table dropped
DROP TABLE small_product;
-- step: Dropping LargeProduct table... | ✓ LargeProduct table dropped
DROP TABLE large_product;
DROP SCHEMA risky_migrations CASCADE;
