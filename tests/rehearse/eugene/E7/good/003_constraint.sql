ALTER TABLE items ADD CONSTRAINT items_code_unique UNIQUE USING INDEX items_code_unique;
