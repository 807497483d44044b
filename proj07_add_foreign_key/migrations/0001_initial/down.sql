-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj07_add_foreign_key');
-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallOrder table... | ✓ SmallOrder table dropped
DROP TABLE small_order;
-- step: Dropping LargeOrder table... | ✓ LargeOrder table dropped
DROP TABLE large_order;
-- step: Dropping Customer table... | ✓ Customer table dropped
DROP TABLE customer;
DROP SCHEMA risky_migrations CASCADE;
