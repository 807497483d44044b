-- The plain-SQL twin of the Rust backfill that `manage migrate` runs (see
-- src/backfill.rs): what the `diesel` CLI runs. It walks the primary key in
-- ranges of 100,000 ids and commits after each batch, so no lock is held for
-- long and an interruption loses at most one batch. It must stay ONE statement:
-- several statements in one file run as one implicit transaction, in which
-- COMMIT is refused.
DO $$
DECLARE
    batch_size constant bigint := 100000;
    tbl text;
    lo bigint;
    max_id bigint;
BEGIN
    PERFORM set_config('TimeZone', 'UTC', false);
    FOREACH tbl IN ARRAY ARRAY['small_record', 'large_record'] LOOP
        EXECUTE format('SELECT min(id) - 1, max(id) FROM %I', tbl) INTO lo, max_id;
        WHILE lo < max_id LOOP
            EXECUTE format('UPDATE %I SET created_at_new = created_at::timestamptz
                            WHERE id > $1 AND id <= $2 AND created_at_new IS NULL', tbl)
                USING lo, lo + batch_size;
            COMMIT;
            lo := lo + batch_size;
            -- rows inserted meanwhile get created_at_new from 0003's trigger,
            -- but the walk still covers them in case the trigger was bypassed
            EXECUTE format('SELECT max(id) FROM %I', tbl) INTO max_id;
        END LOOP;
    END LOOP;
END $$;
