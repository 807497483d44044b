-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping SmallOrder table... | ✓ SmallOrder table dropped
DROP TABLE small_order;
-- step: Dropping LargeOrder table... | ✓ LargeOrder table dropped
DROP TABLE large_order;
-- step: Dropping Customer table... | ✓ Customer table dropped
DROP TABLE customer;
