-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj03_indexes');
-- banner: Removing index from email field
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
-- step: Removing index from LargeEmail.email... | ✓ LargeEmail index removed
DROP INDEX IF EXISTS large_email_email_23ed8472_like;
DROP INDEX IF EXISTS large_email_email_23ed8472;
-- step: Removing index from SmallEmail.email... | ✓ SmallEmail index removed
DROP INDEX IF EXISTS small_email_email_1fa9305b_like;
DROP INDEX IF EXISTS small_email_email_1fa9305b;
