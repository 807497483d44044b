-- The lab's guard: refuses another project's database (manage checks it first too).
SELECT risky_migrations.guard('proj07_add_foreign_key');
-- lint: the risky example this project exists to show (scripts/lint-migrations skips it)
-- THE ORIGINAL'S "WRONG WAY": a foreign key added to a table full of rows in
-- one statement, as Django emits it for a ForeignKey. PostgreSQL checks every
-- existing row before it commits, holding SHARE ROW EXCLUSIVE on BOTH tables
-- all the while: writes to large_order and to customer wait for the whole
-- scan; reads go on. (The original's 0002 dropped customer_id and added an
-- empty nullable customer column instead, throwing every order's customer
-- away; this port keeps the data and constrains the column it has. Django
-- would also build an index on customer_id: see proj03 for indexes.)
-- banner: Adding FK customer
-- step: Adding FK customer to SmallOrder... | ✓ SmallOrder FK added
ALTER TABLE small_order ADD CONSTRAINT small_order_customer_id_8c7854fc_fk_customer_id
    FOREIGN KEY (customer_id) REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED;
-- step: Adding FK customer to LargeOrder... | ✓ LargeOrder FK added
ALTER TABLE large_order ADD CONSTRAINT large_order_customer_id_96b7b144_fk_customer_id
    FOREIGN KEY (customer_id) REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED;
