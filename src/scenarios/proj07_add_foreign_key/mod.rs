//! The talk's `proj07_add_foreign_key`: a foreign key from a big table of
//! orders to its customers. The risky way (0002) adds it in one statement,
//! which checks every order while holding SHARE ROW EXCLUSIVE on both tables;
//! the safe way (0003, from `proj07_safe_backfill`) adds it NOT VALID and
//! validates it in a second transaction. Both end with the same constraint,
//! so the safe path records 0002 with `--fake`.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::prelude::*;

use crate::embedded::PROJ07_ADD_FOREIGN_KEY;
use crate::recipes::ForeignKeyNotValid;
use crate::recipes::foreign_key::ForeignKeySpec;
use crate::scenarios::endpoints::{
    CREATE_LARGE, Endpoint, EndpointError, ExtraProbe, LIST_LARGE, LIST_SMALL, Reply, Request,
    Verb, new_name,
};
use crate::scenarios::{PreparedSql, Scenario, Which, django_json, insert_returning_id};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::{OrderJson, UpdatedOrder};
use schema::{customer, large_order, small_order};

pub static SCENARIO: Scenario = Scenario {
    project: "proj07_add_foreign_key",
    port: 8004,
    migrations: PROJ07_ADD_FOREIGN_KEY,
    rust_migrations: &[("0003", &FOREIGN_KEY_RECIPE)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("customer", "Customer", copy_customers, CUSTOMERS),
            SeedTable::fixed("small_order", "SmallOrder", copy_small, 10),
            SeedTable::large("large_order", "LargeOrder", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 10_000,
        floor_columns: "id, order_number, customer_id, total_amount",
        floor_select: "SELECT i, 'LARGE-' || lpad(i::text, 10, '0'), (i % 100 + 1)::int, 100 + i % 1000 FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[ExtraProbe {
        verb: Verb::Post,
        path: "/customer/",
        table: Some("customer"),
        slower: 1,
    }],
    name_column: "order_number",
    list,
    list_large_sql: || LIST_SQL[1].to_owned(),
    create_large,
    purged: None,
};

/// The original seeds 100 customers; every order points at one of them.
const CUSTOMERS: u64 = 100;

/// The seeds' lists and write, the original's `/update_order/` (its safe
/// twin's write probe; Django's view answers any method), and a write to
/// the referenced table: the foreign key's locks fall on both.
static ENDPOINTS: [Endpoint; 6] = [
    LIST_LARGE,
    LIST_SMALL,
    CREATE_LARGE,
    Endpoint {
        verb: Verb::Get,
        path: "/update_order/",
        handler: update_order,
    },
    Endpoint {
        verb: Verb::Post,
        path: "/update_order/",
        handler: update_order,
    },
    Endpoint {
        verb: Verb::Post,
        path: "/customer/",
        handler: create_customer,
    },
];

static FOREIGN_KEY_RECIPE: ForeignKeyNotValid = ForeignKeyNotValid(&FOREIGN_KEYS);

/// Django's names and definition for `ForeignKey(Customer)` on each table.
static FOREIGN_KEYS: [ForeignKeySpec; 2] = [
    ForeignKeySpec {
        table: "small_order",
        label: "SmallOrder",
        constraint: "small_order_customer_id_8c7854fc_fk_customer_id",
        definition: "(customer_id) REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED",
        field: "customer",
    },
    ForeignKeySpec {
        table: "large_order",
        label: "LargeOrder",
        constraint: "large_order_customer_id_96b7b144_fk_customer_id",
        definition: "(customer_id) REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED",
        field: "customer",
    },
];

/// One list query per table; the amount as Django prints a Decimal.
const LIST_SQL: [&str; 2] = [
    "SELECT id, order_number, customer_id, total_amount::text AS total_amount FROM small_order ORDER BY id LIMIT 10",
    "SELECT id, order_number, customer_id, total_amount::text AS total_amount FROM large_order ORDER BY id LIMIT 10",
];

fn copy_customers(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use customer as t;
    let row = |out: &mut dyn Write, id: u64| {
        writeln!(out, "{id}\tCustomer_{id}\tcustomer{id}@example.com")
    };
    seed::copy_rows(conn, t::table, (t::id, t::name, t::email), ids, &row)
}

/// The customer the original gives order `id`: `customer_ids[id % 100]`.
fn customer_of(id: u64) -> u64 {
    id % CUSTOMERS + 1
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_order as t;
    let row = |out: &mut dyn Write, id: u64| {
        let (customer, amount) = (customer_of(id), 50 + 10 * id);
        writeln!(out, "{id}\tSMALL-{id:05}\t{customer}\t{amount}.00")
    };
    let columns = (t::id, t::order_number, t::customer_id, t::total_amount);
    seed::copy_rows(conn, t::table, columns, ids, &row)
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_order as t;
    let row = |out: &mut dyn Write, id: u64| {
        let (customer, amount) = (customer_of(id), 100 + id % 1000);
        writeln!(out, "{id}\tLARGE-{id:010}\t{customer}\t{amount}.00")
    };
    let columns = (t::id, t::order_number, t::customer_id, t::total_amount);
    seed::copy_rows(conn, t::table, columns, ids, &row)
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    crate::scenarios::list_prepared::<OrderJson>(conn, which, (&LIST_SQL, "orders"))
}

/// An order whose number starts with `name` and ends with its id (order
/// numbers are unique: a probe run again writes the same names), for the
/// customer the seed would give that id, so it satisfies the foreign key.
fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "WITH next AS (SELECT nextval(pg_get_serial_sequence('large_order', 'id')) AS id)
         INSERT INTO large_order (id, order_number, customer_id, total_amount)
         SELECT id, left($1, 30) || ' #' || id, (id % 100 + 1)::int, 100 + id % 1000 FROM next
         RETURNING id",
        name,
    )
}

/// The original's write: the first order's amount, one more.
fn update_order(
    _: &Scenario,
    conn: &mut PgConnection,
    _: Request<'_>,
) -> Result<Reply, EndpointError> {
    let updated = PreparedSql(
        "UPDATE large_order SET total_amount = total_amount + 1
         WHERE id = (SELECT id FROM large_order ORDER BY id LIMIT 1)
         RETURNING id, total_amount::text AS total_amount",
    )
    .get_result::<UpdatedOrder>(conn)
    .optional()?;
    let body = match updated {
        Some(order) => serde_json::json!({
            "success": true,
            "order_id": order.id,
            "new_amount": order.total_amount,
        }),
        None => serde_json::json!({"success": false, "error": "No orders found"}),
    };
    Ok(Reply::ok(django_json(&body)?))
}

/// A customer named `name`, with an address no seeded customer has.
fn create_customer(
    _: &Scenario,
    conn: &mut PgConnection,
    request: Request<'_>,
) -> Result<Reply, EndpointError> {
    let name = new_name(request.body)?;
    let id = insert_returning_id(
        conn,
        "WITH next AS (SELECT nextval(pg_get_serial_sequence('customer', 'id')) AS id)
         INSERT INTO customer (id, name, email)
         SELECT id, $1, 'customer' || id || '@example.com' FROM next
         RETURNING id",
        &name,
    )?;
    Reply::created(&serde_json::json!({ "id": id, "name": name }))
}
