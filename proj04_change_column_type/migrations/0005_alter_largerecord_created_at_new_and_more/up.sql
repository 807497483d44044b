-- THE SAFE WAY, step 3: NOT NULL without scanning under ACCESS EXCLUSIVE.
--   1. ADD CONSTRAINT .. CHECK (col IS NOT NULL) NOT VALID  brief lock, no scan
--   2. VALIDATE CONSTRAINT  scans under SHARE UPDATE EXCLUSIVE: reads and writes go on
--   3. SET NOT NULL         PostgreSQL 12+ trusts the valid check and skips the scan
--   4. DROP CONSTRAINT      the check is now redundant
-- Each step commits before the next. `manage migrate` runs the same steps from
-- Rust (src/safe_ddl.rs); this is the twin the `diesel` CLI runs. It must stay
-- ONE statement: several statements in one file run as one implicit
-- transaction, which would hold step 1's lock through step 2's scan.
-- Re-running it after an interruption finishes the job.
DO $$
DECLARE
    tbl text;
    chk text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['small_record', 'large_record'] LOOP
        chk := tbl || '_created_at_new_not_null';
        IF NOT EXISTS (SELECT 1 FROM pg_constraint
                       WHERE conrelid = tbl::regclass AND conname = chk) THEN
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (created_at_new IS NOT NULL) NOT VALID', tbl, chk);
        END IF;
        COMMIT;
        EXECUTE format('ALTER TABLE %I VALIDATE CONSTRAINT %I', tbl, chk);
        COMMIT;
        EXECUTE format('ALTER TABLE %I ALTER COLUMN created_at_new SET NOT NULL', tbl);
        COMMIT;
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', tbl, chk);
        COMMIT;
    END LOOP;
END $$;
