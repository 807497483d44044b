CREATE INDEX CONCURRENTLY items_code_idx ON items (code);
