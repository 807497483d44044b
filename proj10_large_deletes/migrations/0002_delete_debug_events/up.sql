-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj10_large_deletes');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE RISKY WAY: a data migration as it is usually written,
--     LargeEvent.objects.filter(kind="debug").delete()
-- one DELETE of every matching row, in the migration's transaction. It
-- stops no read and no insert, but it locks every row it deletes until it
-- commits (a request that updates one of them waits for all of it), writes
-- its WAL in one burst (a replica replays it behind the primary), and
-- leaves half the table dead until vacuum reclaims it.
-- banner: Deleting debug events
-- step: Deleting LargeEvent debug rows... | ✓ LargeEvent debug rows deleted
DELETE FROM large_event WHERE kind = 'debug';
-- The lab's bookkeeping, not Django's: 0003's way down restores the rows
-- only where 0003 deleted them, not where this migration did.
COMMENT ON TABLE large_event IS 'debug events deleted by 0002';
