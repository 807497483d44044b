-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj03_indexes');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE ORIGINAL'S "WRONG WAY": `db_index=True` on a varchar, as Django emits
-- it: TWO indexes per column, the btree and a `_like` twin with
-- varchar_pattern_ops (for LIKE 'prefix%' under a non-C collation), each a
-- full build under SHARE: reads go on, every write to the table waits for
-- both builds; Django runs the migration in one transaction, so small_email
-- stays locked until large_email's builds end too.
-- banner: Adding index to email field
-- step: Adding index to SmallEmail.email... | ✓ SmallEmail index created
CREATE INDEX small_email_email_1fa9305b ON small_email (email);
CREATE INDEX small_email_email_1fa9305b_like ON small_email (email varchar_pattern_ops);
-- step: Adding index to LargeEmail.email... | ✓ LargeEmail index created
CREATE INDEX large_email_email_23ed8472 ON large_email (email);
CREATE INDEX large_email_email_23ed8472_like ON large_email (email varchar_pattern_ops);
