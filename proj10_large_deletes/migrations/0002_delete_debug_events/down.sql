-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj10_large_deletes');
-- The lab's way back, not Django's (`RunPython(purge, noop)` cannot give
-- deleted rows back): the seed's rows are a function of their id, so the
-- debug events are re-created as they were, every even id the table's
-- sequence has handed out that has no row. (Where 0002 was recorded with
-- --fake, 0003's way down restored them.)
-- banner: Restoring debug events
-- step: Re-creating LargeEvent debug rows... | ✓ LargeEvent debug rows re-created
INSERT INTO large_event (id, name, kind)
SELECT i, 'LargeEvent_' || i, 'debug'
FROM generate_series(2, (SELECT last_value FROM large_event_id_seq), 2) AS i
WHERE NOT EXISTS (SELECT 1 FROM large_event e WHERE e.id = i);
COMMENT ON TABLE large_event IS NULL;
