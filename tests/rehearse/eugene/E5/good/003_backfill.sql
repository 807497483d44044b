-- In batches by key range, each committed before the next (a DO block
-- that commits runs outside a transaction: statement by statement).
DO $$
DECLARE
    lo bigint := 0;
    top bigint;
BEGIN
    SELECT max(id) INTO top FROM items;
    WHILE lo < top LOOP
        UPDATE items SET code_new = code WHERE id > lo AND id <= lo + 10000 AND code_new IS NULL;
        COMMIT;
        lo := lo + 10000;
    END LOOP;
END $$;
