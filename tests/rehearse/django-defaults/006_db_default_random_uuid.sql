-- public_ref = models.UUIDField(db_default=RandomUUID()): gen_random_uuid()
-- is volatile, a value per row: the table is rewritten.
ALTER TABLE invoices ADD COLUMN public_ref uuid DEFAULT (GEN_RANDOM_UUID()) NOT NULL;
