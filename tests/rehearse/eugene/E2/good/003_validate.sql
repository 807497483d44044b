ALTER TABLE items VALIDATE CONSTRAINT items_name_not_null;
