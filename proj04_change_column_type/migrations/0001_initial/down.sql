-- banner: Dropping tables
-- step: Dropping LargeRecord table... | ✓ LargeRecord table dropped
DROP TABLE large_record;
-- step: Dropping SmallRecord table... | ✓ SmallRecord table dropped
DROP TABLE small_record;
