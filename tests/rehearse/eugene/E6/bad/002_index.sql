CREATE INDEX items_code_idx ON items (code);
