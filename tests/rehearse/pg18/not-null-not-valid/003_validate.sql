-- The rows checked under SHARE UPDATE EXCLUSIVE (reads and writes go on);
-- valid, the column is NOT NULL.
ALTER TABLE items VALIDATE CONSTRAINT items_name_not_null;
