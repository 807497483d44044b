//! Seed 000, `proj01_add_not_null_constraint`: a NOT NULL column on a big
//! table. The seed's "wrong way" (0002) adds `status` NOT NULL DEFAULT as
//! Django emits it; the safe way adds `role` nullable with a default for new
//! rows (0003), backfills it in batches (0004) and enforces NOT NULL without a
//! long lock (0005). `status` is NOT NULL without a default from 0002 on (Django
//! keeps the default in Python), so writes and seeding fill it when it exists.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::pg::CopyTarget;
use diesel::prelude::*;

use crate::backfill::BackfillSpec;
use crate::db;
use crate::embedded::PROJ01_ADD_NOT_NULL_CONSTRAINT;
use crate::recipes::check_not_null::NotNullSpec;
use crate::recipes::{BatchedBackfill, CheckNotNull};
use crate::scenarios::endpoints::SEED_ENDPOINTS;
use crate::scenarios::{FirstRows, Scenario, Which, insert_returning_id, list_json, sql_of};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::UserJson;
use schema::{large_user, small_user};

pub static SCENARIO: Scenario = Scenario {
    project: "proj01_add_not_null_constraint",
    port: 8000,
    migrations: PROJ01_ADD_NOT_NULL_CONSTRAINT,
    rust_migrations: &[("0004", &BACKFILL_RECIPE), ("0005", &NOT_NULL_RECIPE)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: false,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_user", "SmallUser", copy_small, 10),
            SeedTable::large("large_user", "LargeUser", copy_large),
        ],
        default_large_count: 100_000_000,
        default_batch_size: 10_000,
        floor_columns: "id, name",
        floor_select: "SELECT i, 'LargeUser_' || i FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &SEED_ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[],
    name_column: "name",
    list,
    list_large_sql: || sql_of(&large_list()),
    create_large,
    purged: None,
};

/// The seed's batches were a million rows ("safe, no long locks"):
/// rehearsed at 1 M rows with updaters, one such batch held every row's
/// lock 5.6 s and updates waited 2.6 s (`manage rehearse`, docs/rehearse.md).
/// A tenth of it keeps a batch's row locks well under a second.
static BACKFILL_RECIPE: BatchedBackfill = BatchedBackfill {
    specs: &BACKFILL,
    default_batch_size: 100_000,
    kept_if: None,
};

static NOT_NULL_RECIPE: CheckNotNull = CheckNotNull(&NOT_NULL);

static BACKFILL: [BackfillSpec; 2] = [
    BackfillSpec {
        table: "small_user",
        label: "SmallUser",
        column: "role",
        value: "'user'",
    },
    BackfillSpec {
        table: "large_user",
        label: "LargeUser",
        column: "role",
        value: "'user'",
    },
];

static NOT_NULL: [NotNullSpec; 2] = [
    NotNullSpec {
        table: "small_user",
        label: "SmallUser",
        column: "role",
        constraint: "small_user_role_not_null",
    },
    NotNullSpec {
        table: "large_user",
        label: "LargeUser",
        column: "role",
        constraint: "large_user_role_not_null",
    },
];

/// Rows `<model>_<id>`, with `status` 'active' where the column exists.
fn copy_users<T, Plain, WithStatus>(
    conn: &mut PgConnection,
    (table, plain, with_status): (T, Plain, WithStatus),
    (sql_name, model): (&str, &str),
    ids: Range<u64>,
) -> Result<usize, SeedError>
where
    T: Table,
    Plain: CopyTarget<Table = T>,
    WithStatus: CopyTarget<Table = T>,
{
    let name = |out: &mut dyn Write, id: u64| writeln!(out, "{id}\t{model}_{id}");
    let active = |out: &mut dyn Write, id: u64| writeln!(out, "{id}\t{model}_{id}\tactive");
    if db::column_exists(conn, sql_name, "status")? {
        seed::copy_rows(conn, table, with_status, ids, &active)
    } else {
        seed::copy_rows(conn, table, plain, ids, &name)
    }
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_user as t;
    copy_users(
        conn,
        (t::table, (t::id, t::name), (t::id, t::name, t::status)),
        ("small_user", "SmallUser"),
        ids,
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_user as t;
    copy_users(
        conn,
        (t::table, (t::id, t::name), (t::id, t::name, t::status)),
        ("large_user", "LargeUser"),
        ids,
    )
}

/// The first ten users by id, the limit in the SQL ([`FirstRows`]).
macro_rules! first_users {
    ($table:ident) => {
        FirstRows::<_, 10> {
            query: $table::table
                .select(($table::id, $table::name))
                .order($table::id),
        }
    };
}

fn large_list() -> impl diesel::query_builder::QueryFragment<diesel::pg::Pg> {
    first_users!(large_user)
}

/// `id` and `name` exist at every state, so the typed schema serves.
fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    let rows = match which {
        Which::Small => first_users!(small_user).load::<UserJson>(conn)?,
        Which::Large => first_users!(large_user).load::<UserJson>(conn)?,
    };
    list_json("users", &rows)
}

/// `status` gets Django's default where it exists; `role` gets the column
/// default set at 0003.
///
/// The look at the schema and the insert must see the same schema. A write
/// that arrives while 0002 holds the table looked before the column existed
/// and inserted after (HTTP 500, `null value in column "status"`), which the
/// lab then charged to the migration. So the transaction first takes the lock
/// the insert needs anyway (ROW EXCLUSIVE: no other writer waits for it),
/// queueing behind a migration's lock if one is held, and only then looks.
fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    conn.transaction(|conn| {
        diesel::sql_query("LOCK TABLE large_user IN ROW EXCLUSIVE MODE").execute(conn)?;
        let sql = if db::column_exists(conn, "large_user", "status")? {
            "INSERT INTO large_user (name, status) VALUES ($1, 'active') RETURNING id"
        } else {
            "INSERT INTO large_user (name) VALUES ($1) RETURNING id"
        };
        insert_returning_id(conn, sql, name)
    })
}
