-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj06_large_backfills');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE RISKY WAY: a data migration as it is usually written,
--     LargeAccount.objects.update(
--         tier=Case(When(balance__gte=500, then=Value("gold")), default=Value("standard")))
-- one UPDATE of every row, in the migration's transaction (the accounts
-- the application created with a tier get the same one again). It takes no
-- table lock that stops reads, but it locks every row it writes until it
-- commits: a request that updates an account (a deposit) waits for the
-- whole UPDATE. It writes a new version of every row (the table doubles
-- until vacuum reclaims the old ones) and its WAL in one burst, which a
-- replica replays behind the primary.
-- banner: Backfilling tier
-- step: Backfilling SmallAccount.tier... | ✓ SmallAccount.tier backfilled
UPDATE small_account SET tier = CASE WHEN balance >= 500 THEN 'gold' ELSE 'standard' END;
-- step: Backfilling LargeAccount.tier... | ✓ LargeAccount.tier backfilled
UPDATE large_account SET tier = CASE WHEN balance >= 500 THEN 'gold' ELSE 'standard' END;
-- The lab's bookkeeping, not Django's: 0003's way down clears the column
-- only where 0003 filled it, not where this migration did.
COMMENT ON TABLE small_account IS 'tier filled by 0002';
COMMENT ON TABLE large_account IS 'tier filled by 0002';
