-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj06_large_backfills');
-- The data migration's reverse: the tiers cleared again, one UPDATE each,
-- as the way up. (Where 0002 was recorded with --fake, 0003's way down
-- cleared them.)
-- banner: Clearing tier
-- step: Clearing LargeAccount.tier... | ✓ LargeAccount.tier cleared
UPDATE large_account SET tier = NULL WHERE tier IS NOT NULL;
COMMENT ON TABLE large_account IS NULL;
-- step: Clearing SmallAccount.tier... | ✓ SmallAccount.tier cleared
UPDATE small_account SET tier = NULL WHERE tier IS NOT NULL;
COMMENT ON TABLE small_account IS NULL;
