ALTER TABLE items ADD CONSTRAINT items_code_unique UNIQUE (code);
