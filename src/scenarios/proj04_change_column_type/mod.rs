//! Seed 002, `proj04_change_column_type`: `created_at` from varchar to
//! timestamptz, the risky way (0002: a rewrite under ACCESS EXCLUSIVE) and the
//! safe way (0003 new column and sync trigger, 0004 batched backfill, 0005
//! NOT NULL without a long lock). The safe path records 0002 with `--fake`, so
//! everything here works whether `created_at` is varchar or timestamptz.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::pg::CopyTarget;
use diesel::prelude::*;

use crate::backfill::BackfillSpec;
use crate::embedded::PROJ04_CHANGE_COLUMN_TYPE;
use crate::recipes::check_not_null::NotNullSpec;
use crate::recipes::{BatchedBackfill, CheckNotNull};
use crate::scenarios::endpoints::SEED_ENDPOINTS;
use crate::scenarios::{PreparedSql, Scenario, Which, insert_returning_id, sql_of};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::RecordJson;
use schema::{large_record, small_record};

pub static SCENARIO: Scenario = Scenario {
    project: "proj04_change_column_type",
    port: 8002,
    migrations: PROJ04_CHANGE_COLUMN_TYPE,
    rust_migrations: &[("0004", &BACKFILL_RECIPE), ("0005", &NOT_NULL_RECIPE)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_record", "SmallRecord", copy_small, 10),
            SeedTable::large("large_record", "LargeRecord", copy_large),
        ],
        default_large_count: 10_000_000,
        default_batch_size: 10_000,
        floor_columns: "id, name, created_at",
        floor_select: "SELECT i, 'LargeRecord_' || i, '2024-01-' || lpad(((i - 1) % 28 + 1)::text, 2, '0') || ' 10:00:00' FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &SEED_ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[],
    name_column: "name",
    list,
    list_large_sql: || sql_of(&PreparedSql(LIST_SQL[1])),
    create_large,
    purged: None,
};

/// One list query per table; `created_at` rendered the same at every state.
const LIST_SQL: [&str; 2] = [
    "SELECT id, name, to_char(created_at::timestamptz, 'YYYY-MM-DD HH24:MI:SS') AS created_at FROM small_record ORDER BY id LIMIT 10",
    "SELECT id, name, to_char(created_at::timestamptz, 'YYYY-MM-DD HH24:MI:SS') AS created_at FROM large_record ORDER BY id LIMIT 10",
];

/// created_at's text becomes timestamptz through the session's TimeZone, which
/// the lab pins to UTC on every connection (see `db`).
static BACKFILL_RECIPE: BatchedBackfill = BatchedBackfill {
    specs: &BACKFILL,
    default_batch_size: 100_000,
    kept_if: None,
};

static NOT_NULL_RECIPE: CheckNotNull = CheckNotNull(&NOT_NULL);

static BACKFILL: [BackfillSpec; 2] = [
    BackfillSpec {
        table: "small_record",
        label: "SmallRecord",
        column: "created_at_new",
        value: "created_at::timestamptz",
    },
    BackfillSpec {
        table: "large_record",
        label: "LargeRecord",
        column: "created_at_new",
        value: "created_at::timestamptz",
    },
];

static NOT_NULL: [NotNullSpec; 2] = [
    NotNullSpec {
        table: "small_record",
        label: "SmallRecord",
        column: "created_at_new",
        constraint: "small_record_created_at_new_not_null",
    },
    NotNullSpec {
        table: "large_record",
        label: "LargeRecord",
        column: "created_at_new",
        constraint: "large_record_created_at_new_not_null",
    },
];

/// Rows `<model>_<id>` created `2024-01-DD 10:00:00`, the day cycling 1..28
/// as the original seeding did.
fn copy_records<T, C>(
    conn: &mut PgConnection,
    table: T,
    columns: C,
    model: &str,
    ids: Range<u64>,
) -> Result<usize, SeedError>
where
    T: Table,
    C: CopyTarget<Table = T>,
{
    let row = |out: &mut dyn Write, id: u64| {
        writeln!(
            out,
            "{id}\t{model}_{id}\t2024-01-{:02} 10:00:00",
            (id - 1) % 28 + 1
        )
    };
    seed::copy_rows(conn, table, columns, ids, &row)
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_record as t;
    copy_records(
        conn,
        t::table,
        (t::id, t::name, t::created_at),
        "SmallRecord",
        ids,
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_record as t;
    copy_records(
        conn,
        t::table,
        (t::id, t::name, t::created_at),
        "LargeRecord",
        ids,
    )
}

/// `created_at` is rendered the same at every state: varchar holds the seed's
/// text, and timestamptz (after a real 0002) prints back to it in the pinned
/// UTC session.
fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    crate::scenarios::list_prepared::<RecordJson>(conn, which, (&LIST_SQL, "records"))
}

/// `LOCALTIMESTAMP(0)` is assignable to varchar (as the seed's text) and to
/// timestamptz alike; from 0003 on, the trigger fills created_at_new.
fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "INSERT INTO large_record (name, created_at) VALUES ($1, LOCALTIMESTAMP(0)) RETURNING id",
        name,
    )
}
