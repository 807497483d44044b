//! The talk's planned `proj10_large_deletes` (its roadmap: "deleting
//! millions of rows"), built here. A big table of events holds, interleaved
//! with the rest, the debug events a release stopped logging: half the
//! rows, which nothing reads. The risky way (0002) is the data migration as
//! it is usually written: one `DELETE` of them all, in one transaction. It
//! stops no read and no insert, but it locks every row it deletes until it
//! commits, writes its WAL in one burst (a replica replays it behind the
//! primary) and leaves half the table dead for vacuum. The safe way (0003,
//! from Rust) deletes them in ranges of ids, each committed on its own,
//! within the budget (`--max-replica-lag`, `--max-blocked-sessions`). The
//! safe path records 0002 with `--fake`.
//!
//! VACUUM's truncation (ACCESS EXCLUSIVE, to give back the empty pages at
//! the end of a table) needs an empty tail, which interleaved deletes never
//! leave: its test empties a tail to measure it, and `vacuum_truncate =
//! off`, which turns it off.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::prelude::*;

use crate::backfill::PurgeSpec;
use crate::embedded::PROJ10_LARGE_DELETES;
use crate::recipes::BatchedDelete;
use crate::scenarios::endpoints::{Endpoint, SEED_ENDPOINTS};
use crate::scenarios::{
    Purged, Scenario, Which, insert_returning_id, list_prepared, marked_or_applied,
};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::EventJson;
use schema::{large_event, small_event};

pub static SCENARIO: Scenario = Scenario {
    project: "proj10_large_deletes",
    port: 8008,
    migrations: PROJ10_LARGE_DELETES,
    rust_migrations: &[("0003", &DELETE_RECIPE)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_event", "SmallEvent", copy_small, 10),
            SeedTable::large("large_event", "LargeEvent", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 1_000_000,
        floor_columns: "id, name, kind",
        floor_select: "SELECT i, 'LargeEvent_' || i, CASE WHEN i % 2 = 0 THEN 'debug' ELSE 'info' END FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[],
    name_column: "name",
    list,
    list_large_sql: || LIST_SQL[1].to_owned(),
    create_large,
    purged: Some(Purged {
        filter: DEBUG,
        // the odd ids
        kept_of_seeded: |n| n.div_ceil(2),
        rehearse_value: "large_event.kind='debug'",
    }),
};

static ENDPOINTS: [Endpoint; 3] = SEED_ENDPOINTS;

/// Batches of 10,000 ids (5,000 rows deleted each), as proj06's backfill:
/// a writer to a row waits at most for the batch that holds it.
static DELETE_RECIPE: BatchedDelete = BatchedDelete {
    specs: &PURGE,
    default_batch_size: 10_000,
    kept_if: Some(DELETED_BY_0002),
    restore: &[RESTORE_DEBUG],
};

/// The mark a real 0002 leaves on the table (its comment).
const DELETED_BY_0002: &str = "debug events deleted by 0002";

static PURGE: [PurgeSpec; 1] = [PurgeSpec {
    table: "large_event",
    label: "LargeEvent",
    filter: DEBUG,
}];

/// The rows the migrations delete.
pub const DEBUG: &str = "kind = 'debug'";

/// The way down of 0003, as 0002's `down.sql`: the seed's debug rows again,
/// every even id the sequence handed out that has no row.
const RESTORE_DEBUG: &str = "INSERT INTO large_event (id, name, kind) \
     SELECT i, 'LargeEvent_' || i, 'debug' \
     FROM generate_series(2, (SELECT last_value FROM large_event_id_seq), 2) AS i \
     WHERE NOT EXISTS (SELECT 1 FROM large_event e WHERE e.id = i)";

const LIST_SQL: [&str; 2] = [
    "SELECT id, name, kind FROM small_event ORDER BY id LIMIT 10",
    "SELECT id, name, kind FROM large_event ORDER BY id LIMIT 10",
];

/// An event's kind: the even ids were debug events, until the debug
/// events were deleted (by a real 0002, marked on the table, or by 0003);
/// rows seeded after that are info events, as the application now logs.
fn kind(id: u64, purged: bool) -> &'static str {
    if id % 2 == 0 && !purged {
        "debug"
    } else {
        "info"
    }
}

/// Rows `<model>_<id>` of their id's kind at this state.
fn copy_events<T, C>(
    conn: &mut PgConnection,
    (table, target): (T, C),
    (sql_name, model): (&str, &str),
    ids: Range<u64>,
) -> Result<usize, SeedError>
where
    T: Table,
    C: diesel::pg::CopyTarget<Table = T>,
{
    let purged = marked_or_applied(conn, sql_name, DELETED_BY_0002, "0003")?;
    let row =
        |out: &mut dyn Write, id: u64| writeln!(out, "{id}\t{model}_{id}\t{}", kind(id, purged));
    seed::copy_rows(conn, table, target, ids, &row)
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_event as t;
    copy_events(
        conn,
        (t::table, (t::id, t::name, t::kind)),
        ("small_event", "SmallEvent"),
        ids,
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_event as t;
    copy_events(
        conn,
        (t::table, (t::id, t::name, t::kind)),
        ("large_event", "LargeEvent"),
        ids,
    )
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    list_prepared::<EventJson>(conn, which, (&LIST_SQL, "events"))
}

/// The application logs info events only, at every state.
fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "INSERT INTO large_event (name, kind) VALUES ($1, 'info') RETURNING id",
        name,
    )
}
