ALTER TABLE items ADD COLUMN code_new bigint;
