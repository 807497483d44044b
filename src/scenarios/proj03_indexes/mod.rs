//! The talk's `proj03_indexes`: an index on a big table's email column.
//! The risky way (0002) is `db_index=True` as Django emits it for a
//! varchar: two plain `CREATE INDEX` per column, each holding SHARE (writes
//! wait) for a full build. The safe way is `proj03_safe_backfill`'s, done
//! right: one index per table (`*_email_idx`), each built concurrently in its
//! own migration (0003, 0004), INVALID leftovers dropped first. The safe path
//! records 0002 with `--fake`: its indexes are never built.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::prelude::*;
use rand::Rng;

use crate::embedded::PROJ03_INDEXES;
use crate::recipes::ConcurrentIndex;
use crate::recipes::concurrent_index::IndexSpec;
use crate::scenarios::endpoints::{
    CREATE_LARGE, Endpoint, EndpointError, ExtraProbe, LIST_SMALL, Reply, Request, Verb,
};
use crate::scenarios::{FirstRows, Scenario, Which, django_json, insert_returning_id, list_json};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::EmailJson;
use schema::{large_email, small_email};

/// The first ten rows by id, the limit in the SQL ([`FirstRows`]).
macro_rules! first_emails {
    ($table:ident) => {
        FirstRows::<_, 10> {
            query: $table::table
                .select(($table::id, $table::name, $table::email))
                .order($table::id),
        }
    };
}

pub static SCENARIO: Scenario = Scenario {
    project: "proj03_indexes",
    port: 8001,
    migrations: PROJ03_INDEXES,
    rust_migrations: &[("0003", &SMALL_INDEX), ("0004", &LARGE_INDEX)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_email", "SmallEmail", copy_small, 10),
            SeedTable::large("large_email", "LargeEmail", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 1_000_000,
        floor_columns: "id, name, email",
        floor_select: "SELECT i, 'LargeUser_' || i, 'user' || i || '@example.com' FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &ENDPOINTS,
    // the original's endpoint writes before it reads: the lab's read probe
    // asks it not to, and probes the original's way beside it
    read_probe: "/list_large/?read_only=1",
    write_probe: "/large/",
    also_probe: &[ExtraProbe {
        verb: Verb::Get,
        path: "/list_large/",
        table: None,
        slower: 1,
    }],
    name_column: "name",
    list,
    list_large_sql: || crate::scenarios::sql_of(&first_emails!(large_email)),
    create_large,
    purged: None,
};

static ENDPOINTS: [Endpoint; 3] = [
    Endpoint {
        verb: Verb::Get,
        path: "/list_large/",
        handler: list_large,
    },
    LIST_SMALL,
    CREATE_LARGE,
];

static SMALL_INDEX: ConcurrentIndex = ConcurrentIndex(IndexSpec {
    table: "small_email",
    label: "SmallEmail",
    name: "small_email_email_idx",
    columns: "(email)",
});

static LARGE_INDEX: ConcurrentIndex = ConcurrentIndex(IndexSpec {
    table: "large_email",
    label: "LargeEmail",
    name: "large_email_email_idx",
    columns: "(email)",
});

/// Rows `<model>_<id>` with the original's addresses.
fn copy_emails<T, C>(
    conn: &mut PgConnection,
    (table, columns): (T, C),
    (model, address): (&str, &str),
    ids: Range<u64>,
) -> Result<usize, SeedError>
where
    T: Table,
    C: diesel::pg::CopyTarget<Table = T>,
{
    let row = |out: &mut dyn Write, id: u64| {
        writeln!(out, "{id}\t{model}_{id}\t{address}{id}@example.com")
    };
    seed::copy_rows(conn, table, columns, ids, &row)
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_email as t;
    let target = (t::table, (t::id, t::name, t::email));
    copy_emails(conn, target, ("SmallUser", "small"), ids)
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_email as t;
    let target = (t::table, (t::id, t::name, t::email));
    copy_emails(conn, target, ("LargeUser", "user"), ids)
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    let rows = match which {
        Which::Small => first_emails!(small_email).load::<EmailJson>(conn)?,
        Which::Large => first_emails!(large_email).load::<EmailJson>(conn)?,
    };
    list_json("emails", &rows)
}

/// The original's view: an UPDATE of a random row among the first 1,000 (in
/// its own transaction), then the list, with the id it updated. With
/// `?read_only=1`, the list alone (the lab's read probe).
fn list_large(
    s: &Scenario,
    conn: &mut PgConnection,
    request: Request<'_>,
) -> Result<Reply, EndpointError> {
    if request.query.get("read_only").is_some_and(|v| v == "1") {
        return Ok(Reply::ok(s.list(conn, Which::Large)?));
    }
    let id: i64 = rand::rng().random_range(1..=1000);
    conn.transaction(|conn| {
        diesel::update(large_email::table.find(id))
            .set(large_email::email.eq(format!("updated_{id}@example.com")))
            .execute(conn)
    })?;
    let rows = first_emails!(large_email).load::<EmailJson>(conn)?;
    let body = serde_json::json!({"emails": rows, "count": rows.len(), "updated_id": id});
    Ok(Reply::ok(django_json(&body)?))
}

/// A row named `name` with an address made from it.
fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "INSERT INTO large_email (name, email) VALUES ($1, replace($1, ' ', '_') || '@example.com') RETURNING id",
        name,
    )
}
