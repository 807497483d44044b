-- The backfill as one statement: every row locked until it commits.
UPDATE items SET code_new = code;
