-- PostgreSQL 18: a NOT NULL constraint added without checking the rows
-- (ACCESS EXCLUSIVE for a moment), the column not yet NOT NULL.
ALTER TABLE items ADD CONSTRAINT items_name_not_null NOT NULL name NOT VALID;
