//! The talk's planned `proj06_large_backfills` (its roadmap: "mass updates
//! locking tables"), built here. A big table of accounts has a nullable
//! `tier` that the application writes for new accounts; the old ones need
//! theirs. The risky way (0002) is the data migration as it is usually
//! written: one `UPDATE` of every row, in one transaction. It stops no
//! read, but it locks every row it writes until it commits, so the
//! application's updates of those rows (`POST /deposit/`) wait for all of
//! it; it writes a second version of every row and its WAL in one burst.
//! The safe way (0003, from Rust) is the lab's batched backfill: ranges of
//! ids, each committed on its own, within the budget (`--max-replica-lag`,
//! `--max-blocked-sessions`). The safe path records 0002 with `--fake`.

pub mod models;
pub mod schema;

use std::io::Write;
use std::ops::Range;

use diesel::pg::CopyTarget;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::backfill::BackfillSpec;
use crate::embedded::PROJ06_LARGE_BACKFILLS;
use crate::recipes::BatchedBackfill;
use crate::scenarios::endpoints::{
    CREATE_LARGE, Endpoint, EndpointError, ExtraProbe, LIST_LARGE, LIST_SMALL, Reply, Request, Verb,
};
use crate::scenarios::{
    PreparedSql, Scenario, Which, insert_returning_id, list_prepared, marked_or_applied, price,
};
use crate::seed::{self, SeedError, SeedPlan, SeedTable};
use models::AccountJson;
use schema::{large_account, small_account};

pub static SCENARIO: Scenario = Scenario {
    project: "proj06_large_backfills",
    port: 8007,
    migrations: PROJ06_LARGE_BACKFILLS,
    rust_migrations: &[("0003", &BACKFILL_RECIPE)],
    start: "0001",
    risky: "0002",
    safe_path_fakes_risky: true,
    deploy: None,
    seed: SeedPlan {
        tables: &[
            SeedTable::fixed("small_account", "SmallAccount", copy_small, 10),
            SeedTable::large("large_account", "LargeAccount", copy_large),
        ],
        default_large_count: 5_000_000,
        default_batch_size: 1_000_000,
        floor_columns: "id, name, balance",
        floor_select: "SELECT i, 'LargeAccount_' || i, (i * 7919 % 100000) / 100.0 FROM generate_series(1::bigint, $1) AS i",
    },
    endpoints: &ENDPOINTS,
    read_probe: "/list_large/",
    write_probe: "/large/",
    also_probe: &[ExtraProbe {
        verb: Verb::Post,
        path: "/deposit/",
        table: None,
        slower: 1,
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
        verb: Verb::Post,
        path: "/deposit/",
        handler: deposit,
    },
];

/// Batches of 10,000 ids: a deposit waits for the batch that holds its
/// row, so a batch's row locks are what the writers feel (100,000 ids made
/// one wait 1.3 s at 1,000,000 rows in the demo).
static BACKFILL_RECIPE: BatchedBackfill = BatchedBackfill {
    specs: &BACKFILL,
    default_batch_size: 10_000,
    kept_if: Some(FILLED_BY_0002),
};

/// The mark a real 0002 leaves on each table (its comment).
const FILLED_BY_0002: &str = "tier filled by 0002";

/// The tier 0002 and 0003 both give an account, from its balance.
pub const TIER: &str = "CASE WHEN balance >= 500 THEN 'gold' ELSE 'standard' END";

static BACKFILL: [BackfillSpec; 2] = [
    BackfillSpec {
        table: "small_account",
        label: "SmallAccount",
        column: "tier",
        value: TIER,
    },
    BackfillSpec {
        table: "large_account",
        label: "LargeAccount",
        column: "tier",
        value: TIER,
    },
];

const LIST_SQL: [&str; 2] = [
    "SELECT id, name, balance::text AS balance FROM small_account ORDER BY id LIMIT 10",
    "SELECT id, name, balance::text AS balance FROM large_account ORDER BY id LIMIT 10",
];

/// One account, drawn at random among all of them, one more in its
/// balance: over a run the deposits touch rows all over the table, as the
/// backfill's batches do.
const DEPOSIT_SQL: &str = "UPDATE large_account SET balance = balance + 1 \
     WHERE id = (SELECT 1 + floor(random() * max(id))::bigint FROM large_account) \
     RETURNING id, name, balance::text AS balance";

/// The same, to the account `$1`.
const DEPOSIT_TO_SQL: &str = "UPDATE large_account SET balance = balance + 1 WHERE id = $1 \
     RETURNING id, name, balance::text AS balance";

/// The tier of a balance in cents, as [`TIER`] gives it.
fn tier(cents: u64) -> &'static str {
    if cents >= 50_000 { "gold" } else { "standard" }
}

/// Rows `<model>_<id>` with a balance of `cents(id)`, and their tier where
/// the tiers were filled at this state.
fn copy_accounts<T, Plain, Tiered>(
    conn: &mut PgConnection,
    (table, plain, tiered): (T, Plain, Tiered),
    (sql_name, model): (&str, &str),
    cents: fn(u64) -> u64,
    ids: Range<u64>,
) -> Result<usize, SeedError>
where
    T: Table,
    Plain: CopyTarget<Table = T>,
    Tiered: CopyTarget<Table = T>,
{
    let row =
        |out: &mut dyn Write, id: u64| writeln!(out, "{id}\t{model}_{id}\t{}", price(cents(id)));
    let with_tier = |out: &mut dyn Write, id: u64| {
        let cents = cents(id);
        writeln!(out, "{id}\t{model}_{id}\t{}\t{}", price(cents), tier(cents))
    };
    // filled by a real 0002 (its mark on the table) or by 0003
    if marked_or_applied(conn, sql_name, FILLED_BY_0002, "0003")? {
        seed::copy_rows(conn, table, tiered, ids, &with_tier)
    } else {
        seed::copy_rows(conn, table, plain, ids, &row)
    }
}

fn copy_small(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use small_account as t;
    copy_accounts(
        conn,
        (
            t::table,
            (t::id, t::name, t::balance),
            (t::id, t::name, t::balance, t::tier),
        ),
        ("small_account", "SmallAccount"),
        |id| 1099 + 100 * id,
        ids,
    )
}

fn copy_large(conn: &mut PgConnection, ids: Range<u64>) -> Result<usize, SeedError> {
    use large_account as t;
    copy_accounts(
        conn,
        (
            t::table,
            (t::id, t::name, t::balance),
            (t::id, t::name, t::balance, t::tier),
        ),
        ("large_account", "LargeAccount"),
        |id| id * 7919 % 100_000,
        ids,
    )
}

fn list(conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
    list_prepared::<AccountJson>(conn, which, (&LIST_SQL, "accounts"))
}

/// New accounts get their tier from the application, at every state.
fn create_large(conn: &mut PgConnection, name: &str, _: u32) -> QueryResult<i64> {
    insert_returning_id(
        conn,
        "INSERT INTO large_account (name, balance, tier) VALUES ($1, 0, 'standard') RETURNING id",
        name,
    )
}

/// `POST /deposit/`: one more in an account's balance (`?id=N`, else one
/// drawn at random); answers 201 (a deposit made) with the account, or
/// `{"account": null}` where there is none.
fn deposit(
    _: &Scenario,
    conn: &mut PgConnection,
    request: Request<'_>,
) -> Result<Reply, EndpointError> {
    let accounts = match request.query.get("id") {
        Some(id) => {
            let id: i64 = id
                .parse()
                .map_err(|_| EndpointError::BadRequest(format!("id must be a number: {id:?}")))?;
            diesel::sql_query(DEPOSIT_TO_SQL)
                .bind::<BigInt, _>(id)
                .load::<AccountJson>(conn)?
        }
        None => PreparedSql(DEPOSIT_SQL).load::<AccountJson>(conn)?,
    };
    Reply::created(&serde_json::json!({ "account": accounts.first() }))
}
