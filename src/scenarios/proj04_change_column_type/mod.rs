//! Seed 002, `proj04_change_column_type`: `created_at` from varchar to
//! timestamptz, the risky way (0002: a rewrite under ACCESS EXCLUSIVE) and the
//! safe way (0003 new column and sync trigger, 0004 batched backfill, 0005
//! NOT NULL without a long lock). The safe path records 0002 with `--fake`, so
//! everything here works whether `created_at` is varchar or timestamptz.

pub mod models;
pub mod schema;

use std::io::{self, Write};
use std::ops::Range;

use diesel::prelude::*;

use crate::backfill::BackfillSpec;
use crate::migrations::embedded::PROJ04_CHANGE_COLUMN_TYPE;
use crate::migrations::{RustMigration, SqlFiles};
use crate::safe_ddl::NotNullSpec;
use crate::scenarios::{Scenario, Which, insert_returning_id, list_json};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::RecordJson;
use schema::{large_record, small_record};

pub struct Proj04;

pub static SCENARIO: Proj04 = Proj04;

/// created_at's text becomes timestamptz through the session's TimeZone, which
/// the lab pins to UTC on every connection (see `db`).
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

/// The seed's batch size for 0004.
pub const BACKFILL_BATCH_SIZE: u64 = 100_000;

static SEED: SeedPlan = SeedPlan {
    small: SeedTable {
        table: "small_record",
        label: "SmallRecord",
        copy: copy_small,
    },
    small_count: 10,
    large: SeedTable {
        table: "large_record",
        label: "LargeRecord",
        copy: copy_large,
    },
    default_large_count: 10_000_000,
    default_batch_size: 10_000,
};

/// `2024-01-DD 10:00:00`, the day cycling 1..28 as the original seeding did.
fn write_row(out: &mut dyn Write, prefix: &str, id: u64) -> io::Result<()> {
    writeln!(
        out,
        "{id}\t{prefix}_{id}\t2024-01-{:02} 10:00:00",
        (id - 1) % 28 + 1
    )
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_record as t;
    seed::copy_rows(
        conn,
        t::table,
        (t::id, t::name, t::created_at),
        ids,
        |out, i| write_row(out, "SmallRecord", i),
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_record as t;
    seed::copy_rows(
        conn,
        t::table,
        (t::id, t::name, t::created_at),
        ids,
        |out, i| write_row(out, "LargeRecord", i),
    )
}

impl Scenario for Proj04 {
    fn project(&self) -> &'static str {
        "proj04_change_column_type"
    }

    fn default_port(&self) -> u16 {
        8002
    }

    fn migrations(&self) -> &'static [SqlFiles] {
        PROJ04_CHANGE_COLUMN_TYPE
    }

    fn rust_migration(&self, version: &str) -> Option<RustMigration> {
        match version {
            "0004" => Some(RustMigration::Backfill {
                specs: &BACKFILL,
                default_batch_size: BACKFILL_BATCH_SIZE,
            }),
            "0005" => Some(RustMigration::SafeNotNull(&NOT_NULL)),
            _ => None,
        }
    }

    fn seed_plan(&self) -> &'static SeedPlan {
        &SEED
    }

    /// `created_at` is rendered the same at every state: varchar holds the
    /// seed's text, and timestamptz (after a real 0002) prints back to it in
    /// the pinned UTC session.
    fn list(&self, conn: &mut PgConnection, which: Which) -> QueryResult<serde_json::Value> {
        let table = match which {
            Which::Small => "small_record",
            Which::Large => "large_record",
        };
        let rows = diesel::sql_query(format!(
            "SELECT id, name, to_char(created_at::timestamptz, 'YYYY-MM-DD HH24:MI:SS') AS created_at
             FROM {table} ORDER BY id LIMIT 10"
        ))
        .load::<RecordJson>(conn)?;
        Ok(list_json("records", rows))
    }

    /// `LOCALTIMESTAMP(0)` is assignable to varchar (as the seed's text) and
    /// to timestamptz alike; from 0003 on, the trigger fills created_at_new.
    fn create_large(&self, conn: &mut PgConnection, name: &str) -> QueryResult<i64> {
        insert_returning_id(
            conn,
            "INSERT INTO large_record (name, created_at) VALUES ($1, LOCALTIMESTAMP(0)) RETURNING id",
            name,
        )
    }
}
