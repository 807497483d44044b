CREATE UNIQUE INDEX CONCURRENTLY items_code_unique ON items (code);
