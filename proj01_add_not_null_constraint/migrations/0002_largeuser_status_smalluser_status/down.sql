-- banner: Removing status field
-- step: Removing LargeUser.status... | ✓ LargeUser.status removed
ALTER TABLE large_user DROP COLUMN status;
-- step: Removing SmallUser.status... | ✓ SmallUser.status removed
ALTER TABLE small_user DROP COLUMN status;
