//! The talk's `proj05_drop_column`: dropping `legacy_code` while code still
//! uses it. The risky way (0002) drops it under release 1 of the app, which
//! reads it (`/search_by_legacy_code/`) and writes it (`POST /large/`): those
//! fail from the drop on. The safe way is expand/contract: 0003 makes the
//! column nullable, release 2 (which never names it) is deployed, and 0004
//! drops it with `lock_timeout`. The safe path records 0002 with `--fake`.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::db;
use crate::embedded::PROJ05_DROP_COLUMN;
use crate::scenarios::endpoints::{
    CREATE_LARGE, Endpoint, EndpointError, ExtraProbe, LIST_LARGE, LIST_SMALL, Reply, Request, Verb,
};
use crate::scenarios::{Deploy, Scenario, Which, django_json, insert_returning_id};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::ListedProduct;

pub static SCENARIO: Scenario = Scenario {
    project: "proj05_drop_column",
    port: 8003,
    migrations: PROJ05_DROP_COLUMN,
    rust_migrations: &[],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: Some(Deploy {
        before: "0004",
        release: 2,
        what: "stops using legacy_code",
    }),
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_product", "SmallProduct", copy_small, 10),
            SeedTable::large("large_product", "LargeProduct", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 1_000_000,
        floor_columns: "id, name, legacy_code, price",
        floor_select: "SELECT i, 'LargeProduct_' || i, 'LEGACY_' || lpad(i::text, 10, '0'), 19.99 + i % 100 FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[ExtraProbe {
        verb: Verb::Get,
        path: "/search_by_legacy_code/?code=LEGACY_0000000001",
        table: None,
        // the original's search scans the table (legacy_code has no index):
        // once a second shows the outage; five a second at 10 M rows kept
        // the table busy for good (proj05_drop_column/README.md)
        slower: 50,
    }],
    name_column: "name",
    list,
    list_large_sql: || LIST_SQL[1].to_owned(),
    create_large,
    purged: None,
};

static ENDPOINTS: [Endpoint; 4] = [
    LIST_LARGE,
    LIST_SMALL,
    CREATE_LARGE,
    Endpoint {
        verb: Verb::Get,
        path: "/search_by_legacy_code/",
        handler: search_by_legacy_code,
    },
];

/// The tables as they are until the safe path drops `legacy_code` (the
/// committed `schema.rs` is the end state, without it): what seeding
/// copies into while the column is there.
mod with_legacy_code {
    diesel::table! {
        large_product (id) {
            id -> Int8,
            name -> Varchar,
            legacy_code -> Varchar,
            price -> Numeric,
        }
    }

    diesel::table! {
        small_product (id) {
            id -> Int8,
            name -> Varchar,
            legacy_code -> Varchar,
            price -> Numeric,
        }
    }
}

/// The lists never read `legacy_code` (the original's answer says "N/A"),
/// so they work at every state and in both releases.
const LIST_SQL: [&str; 2] = [
    "SELECT id, name, 'N/A' AS legacy_code, price::text AS price FROM small_product ORDER BY id LIMIT 10",
    "SELECT id, name, 'N/A' AS legacy_code, price::text AS price FROM large_product ORDER BY id LIMIT 10",
];

/// Rows `<model>_<id>` priced as the original's seed, with the legacy code
/// where the column is there.
macro_rules! copy_products {
    ($conn:expr, $table:ident, $ids:expr, $model:literal, $code:expr, $cents:expr) => {{
        let conn: &mut PgConnection = $conn;
        if db::column_exists(conn, stringify!($table), "legacy_code")? {
            use with_legacy_code::$table as t;
            let row = |out: &mut dyn Write, id: u64| {
                let (code, price) = ($code(id), crate::scenarios::price($cents(id)));
                writeln!(out, "{id}\t{}_{id}\t{code}\t{price}", $model)
            };
            let columns = (t::id, t::name, t::legacy_code, t::price);
            seed::copy_rows(conn, t::table, columns, $ids, &row)
        } else {
            use schema::$table as t;
            let row = |out: &mut dyn Write, id: u64| {
                writeln!(
                    out,
                    "{id}\t{}_{id}\t{}",
                    $model,
                    crate::scenarios::price($cents(id))
                )
            };
            seed::copy_rows(conn, t::table, (t::id, t::name, t::price), $ids, &row)
        }
    }};
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    copy_products!(
        conn,
        small_product,
        ids,
        "SmallProduct",
        |id| format!("LEGACY_{id:03}"),
        |id| 1099 + 100 * id
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    copy_products!(
        conn,
        large_product,
        ids,
        "LargeProduct",
        |id| format!("LEGACY_{id:010}"),
        |id| 1999 + 100 * (id % 100)
    )
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    crate::scenarios::list_prepared::<ListedProduct>(conn, which, (&LIST_SQL, "products"))
}

/// Release 1 writes a legacy code, as a model with the field does; release
/// 2 does not name the column.
fn create_large(conn: &mut PgConnection, name: &str, release: u32) -> QueryResult<i64> {
    let sql = match release {
        1 => {
            "INSERT INTO large_product (name, legacy_code, price) VALUES ($1, 'LEGACY_WEB', 9.99) RETURNING id"
        }
        _ => "INSERT INTO large_product (name, price) VALUES ($1, 9.99) RETURNING id",
    };
    insert_returning_id(conn, sql, name)
}

/// The original's search: up to ten products whose legacy code is `code`
/// (default `LEGACY-001`, which the seed never writes). Release 2 has
/// retired it: it answers no products without naming the column.
fn search_by_legacy_code(
    _: &Scenario,
    conn: &mut PgConnection,
    request: Request<'_>,
) -> Result<Reply, EndpointError> {
    let code = request
        .query
        .get("code")
        .map_or("LEGACY-001", String::as_str);
    let products = match request.release {
        1 => diesel::sql_query(
            "SELECT id, name, legacy_code, price::text AS price FROM large_product WHERE legacy_code = $1 LIMIT 10",
        )
        .bind::<Text, _>(code)
        .load::<ListedProduct>(conn)?,
        _ => Vec::new(),
    };
    let body = serde_json::json!({"query": code, "products": products, "count": products.len()});
    Ok(Reply::ok(django_json(&body)?))
}
