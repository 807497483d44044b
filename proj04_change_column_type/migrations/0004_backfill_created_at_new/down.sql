-- Batched like the way up: clears created_at_new 100,000 ids at a time.
DO $$
DECLARE
    batch_size constant bigint := 100000;
    tbl text;
    lo bigint;
    max_id bigint;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['large_record', 'small_record'] LOOP
        EXECUTE format('SELECT min(id) - 1, max(id) FROM %I', tbl) INTO lo, max_id;
        WHILE lo < max_id LOOP
            EXECUTE format('UPDATE %I SET created_at_new = NULL
                            WHERE id > $1 AND id <= $2 AND created_at_new IS NOT NULL', tbl)
                USING lo, lo + batch_size;
            COMMIT;
            lo := lo + batch_size;
        END LOOP;
    END LOOP;
END $$;
