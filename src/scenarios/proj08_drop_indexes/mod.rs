//! The talk's planned `proj08_drop_indexes` (its roadmap: "index drops
//! impacting performance"), built here. A big table of items has an index
//! on `sku`, which release 1's search by SKU is served from. The risky way
//! (0002) is Django's `RemoveIndex` while that release runs: a plain `DROP
//! INDEX` (ACCESS EXCLUSIVE on the table: it queues behind a long
//! transaction, and every query behind it), then every search a sequential
//! scan of the table. The safe way: release 2, which no longer searches by
//! SKU, is deployed; 0003 watches the index's scan count until it stands
//! still and drops it concurrently. The safe path records 0002 with
//! `--fake`.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::embedded::PROJ08_DROP_INDEXES;
use crate::recipes::DropUnusedIndex;
use crate::recipes::concurrent_index::IndexSpec;
use crate::scenarios::endpoints::{
    CREATE_LARGE, Endpoint, EndpointError, ExtraProbe, LIST_LARGE, LIST_SMALL, Reply, Request, Verb,
};
use crate::scenarios::{
    Deploy, Scenario, Which, django_json, insert_returning_id, list_prepared, price,
};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::ItemJson;
use schema::{large_item, small_item};

pub static SCENARIO: Scenario = Scenario {
    project: "proj08_drop_indexes",
    port: 8005,
    migrations: PROJ08_DROP_INDEXES,
    rust_migrations: &[("0003", &DROP_SKU_INDEX)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: Some(Deploy {
        before: "0003",
        release: 2,
        what: "stops searching by SKU",
    }),
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_item", "SmallItem", copy_small, 10),
            SeedTable::large("large_item", "LargeItem", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 1_000_000,
        floor_columns: "id, name, sku, price",
        floor_select: "SELECT i, 'LargeItem_' || i, 'SKU-' || lpad(i::text, 10, '0'), 19.99 + i % 100 FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[ExtraProbe {
        verb: Verb::Get,
        path: "/search_by_sku/?sku=SKU-0000000001",
        table: None,
        // twice a second: through the index a search takes a millisecond;
        // without it, a scan of the whole table each (the regression shown)
        slower: 25,
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
        path: "/search_by_sku/",
        handler: search_by_sku,
    },
];

/// The index release 1's search is served from (0001 builds it).
static DROP_SKU_INDEX: DropUnusedIndex = DropUnusedIndex(IndexSpec {
    table: "large_item",
    label: "LargeItem",
    name: "large_item_sku_idx",
    columns: "(sku)",
});

const LIST_SQL: [&str; 2] = [
    "SELECT id, name, sku, price::text AS price FROM small_item ORDER BY id LIMIT 10",
    "SELECT id, name, sku, price::text AS price FROM large_item ORDER BY id LIMIT 10",
];

/// The search: up to ten items with that SKU (SKUs are unique, so without
/// the index the scan reads the whole table to find no tenth).
const SEARCH_SQL: &str =
    "SELECT id, name, sku, price::text AS price FROM large_item WHERE sku = $1 LIMIT 10";

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_item as t;
    let row = |out: &mut dyn Write, id: u64| {
        let price = price(1099 + 100 * id);
        writeln!(out, "{id}\tSmallItem_{id}\tSMALL-{id:03}\t{price}")
    };
    seed::copy_rows(
        conn,
        t::table,
        (t::id, t::name, t::sku, t::price),
        ids,
        &row,
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_item as t;
    let row = |out: &mut dyn Write, id: u64| {
        let price = price(1999 + 100 * (id % 100));
        writeln!(out, "{id}\tLargeItem_{id}\tSKU-{id:010}\t{price}")
    };
    seed::copy_rows(
        conn,
        t::table,
        (t::id, t::name, t::sku, t::price),
        ids,
        &row,
    )
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    list_prepared::<ItemJson>(conn, which, (&LIST_SQL, "items"))
}

fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "INSERT INTO large_item (name, sku, price) VALUES ($1, 'SKU-WEB', 9.99) RETURNING id",
        name,
    )
}

/// Release 1's search by SKU (default `SKU-0000000001`, the first item).
/// Release 2 has retired it: it answers no items without a query.
fn search_by_sku(
    _: &Scenario,
    conn: &mut PgConnection,
    request: Request<'_>,
) -> Result<Reply, EndpointError> {
    let sku = request
        .query
        .get("sku")
        .map_or("SKU-0000000001", String::as_str);
    let items = match request.release {
        1 => diesel::sql_query(SEARCH_SQL)
            .bind::<Text, _>(sku)
            .load::<ItemJson>(conn)?,
        _ => Vec::new(),
    };
    let body = serde_json::json!({"query": sku, "items": items, "count": items.len()});
    Ok(Reply::ok(django_json(&body)?))
}
