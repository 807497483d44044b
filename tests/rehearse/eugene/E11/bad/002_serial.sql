ALTER TABLE items ADD COLUMN position bigserial;
