-- banner: Dropping tables
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Dropping LargeUser table... | ✓ LargeUser table dropped
DROP TABLE large_user;
-- step: Dropping SmallUser table... | ✓ SmallUser table dropped
DROP TABLE small_user;
