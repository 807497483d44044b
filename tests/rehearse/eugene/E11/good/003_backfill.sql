-- Existing rows numbered in batches, each committed before the next.
DO $$
DECLARE
    lo bigint := 0;
    top bigint;
BEGIN
    SELECT max(id) INTO top FROM items;
    WHILE lo < top LOOP
        UPDATE items SET position = nextval('items_position_seq')
         WHERE id > lo AND id <= lo + 10000 AND position IS NULL;
        COMMIT;
        lo := lo + 10000;
    END LOOP;
END $$;
