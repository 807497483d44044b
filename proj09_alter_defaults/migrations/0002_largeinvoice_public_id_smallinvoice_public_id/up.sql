-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj09_alter_defaults');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE RISKY WAY: what Django 5 emits for
--     public_id = models.UUIDField(db_default=RandomUUID())
-- (django.contrib.postgres.functions.RandomUUID; measured with Django 5.2's
-- sqlmigrate, this project's README). gen_random_uuid() is volatile: every
-- existing row needs a value of its own, so PostgreSQL cannot keep one
-- value in the catalog, as it does for a constant default since 11; it
-- rewrites the whole table, and its indexes, under ACCESS EXCLUSIVE. Reads
-- and writes wait for the whole rewrite.
-- banner: Adding public_id field
-- step: Adding SmallInvoice.public_id (DEFAULT gen_random_uuid())... | ✓ SmallInvoice.public_id added
ALTER TABLE small_invoice ADD COLUMN public_id uuid DEFAULT (gen_random_uuid()) NOT NULL;
-- step: Adding LargeInvoice.public_id (DEFAULT gen_random_uuid())... | ✓ LargeInvoice.public_id added
ALTER TABLE large_invoice ADD COLUMN public_id uuid DEFAULT (gen_random_uuid()) NOT NULL;
