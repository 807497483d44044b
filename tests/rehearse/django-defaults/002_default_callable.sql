-- public_id = models.UUIDField(default=uuid.uuid4): Django calls the
-- function once, when the migration runs, and writes its value into the
-- SQL: a constant default (no rewrite), dropped again at once, and every
-- existing row gets the same UUID.
ALTER TABLE invoices ADD COLUMN public_id uuid DEFAULT 'd8f913af-d043-4c97-a1ac-fb8645ebaaee'::uuid NOT NULL;
ALTER TABLE invoices ALTER COLUMN public_id DROP DEFAULT;
