//! The talk's planned `proj09_alter_defaults` (its roadmap: "unnecessary
//! locks from default changes"), built here. A big table of invoices gets a
//! public id, a UUID per row. The risky way (0002) is what Django 5 emits
//! for `UUIDField(db_default=RandomUUID())`: `ADD COLUMN .. DEFAULT
//! (gen_random_uuid()) NOT NULL`. The default is volatile, so PostgreSQL
//! rewrites the table under ACCESS EXCLUSIVE to give every row its own
//! value (a constant default, proj01's, is kept in the catalog instead).
//! The safe way adds the same kind of column as `public_ref`: nullable,
//! then the default for new rows (0003, catalog-only, each statement
//! bounded by `lock_timeout`), a batched backfill of `gen_random_uuid()`
//! (0004), NOT NULL through a validated check (0005). The safe path records
//! 0002 with `--fake`. Writes name neither column: the defaults fill them.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::prelude::*;

use crate::backfill::BackfillSpec;
use crate::embedded::PROJ09_ALTER_DEFAULTS;
use crate::recipes::check_not_null::NotNullSpec;
use crate::recipes::{BatchedBackfill, CheckNotNull};
use crate::scenarios::endpoints::SEED_ENDPOINTS;
use crate::scenarios::{Scenario, Which, insert_returning_id, list_prepared, price};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::InvoiceJson;
use schema::{large_invoice, small_invoice};

pub static SCENARIO: Scenario = Scenario {
    project: "proj09_alter_defaults",
    port: 8006,
    migrations: PROJ09_ALTER_DEFAULTS,
    rust_migrations: &[("0004", &BACKFILL_RECIPE), ("0005", &NOT_NULL_RECIPE)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_invoice", "SmallInvoice", copy_small, 10),
            SeedTable::large("large_invoice", "LargeInvoice", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 1_000_000,
        floor_columns: "id, name, amount",
        floor_select: "SELECT i, 'LargeInvoice_' || i, 19.99 + i % 100 FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &SEED_ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[],
    name_column: "name",
    list,
    list_large_sql: || LIST_SQL[1].to_owned(),
    create_large,
    purged: None,
};

/// Batches of 100,000 rows, as proj01's: a batch's row locks held well
/// under a second at the lab's sizes.
static BACKFILL_RECIPE: BatchedBackfill = BatchedBackfill {
    specs: &BACKFILL,
    default_batch_size: 100_000,
    kept_if: None,
};

static NOT_NULL_RECIPE: CheckNotNull = CheckNotNull(&NOT_NULL);

/// A value of its own per row: the volatile function, called per row by
/// each batch's UPDATE.
static BACKFILL: [BackfillSpec; 2] = [
    BackfillSpec {
        table: "small_invoice",
        label: "SmallInvoice",
        column: "public_ref",
        value: "gen_random_uuid()",
    },
    BackfillSpec {
        table: "large_invoice",
        label: "LargeInvoice",
        column: "public_ref",
        value: "gen_random_uuid()",
    },
];

static NOT_NULL: [NotNullSpec; 2] = [
    NotNullSpec {
        table: "small_invoice",
        label: "SmallInvoice",
        column: "public_ref",
        constraint: "small_invoice_public_ref_not_null",
    },
    NotNullSpec {
        table: "large_invoice",
        label: "LargeInvoice",
        column: "public_ref",
        constraint: "large_invoice_public_ref_not_null",
    },
];

const LIST_SQL: [&str; 2] = [
    "SELECT id, name, amount::text AS amount FROM small_invoice ORDER BY id LIMIT 10",
    "SELECT id, name, amount::text AS amount FROM large_invoice ORDER BY id LIMIT 10",
];

/// COPY names only these columns: where `public_id` or `public_ref`
/// exists, its default gives each row its own UUID (as the app's writes
/// get them).
fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_invoice as t;
    let row = |out: &mut dyn Write, id: u64| {
        let amount = price(1099 + 100 * id);
        writeln!(out, "{id}\tSmallInvoice_{id}\t{amount}")
    };
    seed::copy_rows(conn, t::table, (t::id, t::name, t::amount), ids, &row)
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_invoice as t;
    let row = |out: &mut dyn Write, id: u64| {
        let amount = price(1999 + 100 * (id % 100));
        writeln!(out, "{id}\tLargeInvoice_{id}\t{amount}")
    };
    seed::copy_rows(conn, t::table, (t::id, t::name, t::amount), ids, &row)
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    list_prepared::<InvoiceJson>(conn, which, (&LIST_SQL, "invoices"))
}

fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "INSERT INTO large_invoice (name, amount) VALUES ($1, 9.99) RETURNING id",
        name,
    )
}
