CREATE SEQUENCE items_position_seq;
ALTER TABLE items ADD COLUMN position bigint;
ALTER TABLE items ALTER COLUMN position SET DEFAULT nextval('items_position_seq');
