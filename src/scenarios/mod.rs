//! The seed projects, one module each. A scenario declares; the lab runs.
//!
//! A scenario says which tables and migrations it has, which migrations run
//! from Rust, what it seeds and what its endpoints answer. Running, seeding,
//! serving and measuring live in the shared lab modules. A new scenario is one
//! more module here with its line in [`all`], one more project directory,
//! and its test `Case` (tests/it/support.rs; a test names a
//! registered pattern without one). What lists the patterns derives from
//! [`all`]: the CLI's project names, `demo`'s order, the pattern pages'
//! links and docs/commands.md's ports (`manage docs` writes them, a test
//! holds them to the registry).

pub mod endpoints;
pub mod proj01_add_not_null_constraint;
pub mod proj03_indexes;
pub mod proj04_change_column_type;
pub mod proj05_drop_column;
pub mod proj06_large_backfills;
pub mod proj07_add_foreign_key;
pub mod proj08_drop_indexes;
pub mod proj09_alter_defaults;
pub mod proj10_large_deletes;

use diesel::prelude::*;

use crate::migrations::SqlFiles;
use crate::recipes::Recipe;
use crate::seed::SeedPlan;

/// Which of the two tables an endpoint lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Small,
    Large,
}

/// The JSON body of `GET /list_small/` or `GET /list_large/`; must answer at
/// every migration state.
pub type ListFn = fn(&mut PgConnection, Which) -> QueryResult<Vec<u8>>;

/// `POST /large/`: inserts a row named `name` as the given release of the
/// app's code does, and returns its id; must work at every migration state
/// that release is meant for.
pub type CreateFn = fn(&mut PgConnection, &str, u32) -> QueryResult<i64>;

/// Which release of the app's code a server (or the demo's writers) runs:
/// 1 at start; a scenario whose safe path needs a deploy declares it
/// ([`Deploy`]), and the demo switches the running server's code path, as
/// a new release would.
#[derive(Debug, Clone)]
pub struct Release(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl Release {
    pub fn new(release: u32) -> Self {
        Release(std::sync::Arc::new(std::sync::atomic::AtomicU32::new(
            release,
        )))
    }

    pub fn get(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set(&self, release: u32) {
        self.0.store(release, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Default for Release {
    fn default() -> Self {
        Release::new(1)
    }
}

/// A deploy the safe path needs between two migrations: the new release's
/// code, running before `before` is applied.
#[derive(Debug, Clone, Copy)]
pub struct Deploy {
    pub before: &'static str,
    pub release: u32,
    /// What the new release changes: `stops using legacy_code`.
    pub what: &'static str,
}

/// What a seed project declares: data, and the two queries that differ.
pub struct Scenario {
    /// The project directory's name, e.g. `proj04_change_column_type`.
    pub project: &'static str,
    /// The seed's HTTP port, when `.env` gives none.
    pub port: u16,
    /// The embedded `migrations/`, in version order.
    pub migrations: &'static [SqlFiles],
    /// The migrations `manage` runs from Rust instead of their SQL files.
    pub rust_migrations: &'static [(&'static str, &'static dyn Recipe)],
    /// The state the walkthrough starts from, seeds at and goes back to after
    /// the risky step: its tables exist, nothing else (a version).
    pub start: &'static str,
    /// The seed's risky migration (the version), and whether the safe path
    /// records it with `--fake` instead of running it again.
    pub risky: &'static str,
    pub safe_path_fakes_risky: bool,
    /// The deploy the safe path needs, if any.
    pub deploy: Option<Deploy>,
    pub seed: SeedPlan,
    /// What the server serves.
    pub endpoints: &'static [endpoints::Endpoint],
    /// The paths the demo's read and write probes hit, among `endpoints`.
    pub read_probe: &'static str,
    pub write_probe: &'static str,
    /// More requests the demo sends all along.
    pub also_probe: &'static [endpoints::ExtraProbe],
    /// The large table's column the write probe's `name` lands in (at its
    /// start): how the demo finds the probe's rows.
    pub name_column: &'static str,
    pub list: ListFn,
    /// The SQL `GET /list_large/` sends, taken from the very query the
    /// endpoint runs: what the benchmark gives pgbench, and what the plan
    /// test explains.
    pub list_large_sql: fn() -> String,
    pub create_large: CreateFn,
    /// Rows the migrations delete (proj10's debug events), if any.
    pub purged: Option<Purged>,
}

/// Rows a scenario's migrations delete: the demo's count of the rows
/// written leaves them out, at whatever state it stopped.
#[derive(Debug, Clone, Copy)]
pub struct Purged {
    /// The condition that matches them, e.g. `kind = 'debug'`.
    pub filter: &'static str,
    /// How many of `n` seeded rows it does not match.
    pub kept_of_seeded: fn(u64) -> u64,
    /// `manage rehearse --value TABLE.COLUMN=SQL` that gives rehearse's
    /// rows what the filter matches (production's table holds such rows;
    /// rows made from the catalog would not).
    pub rehearse_value: &'static str,
}

impl Scenario {
    pub fn project(&self) -> &'static str {
        self.project
    }

    /// Django's app label, kept for the seeds' commands: `migrate demoapp 0002`.
    pub fn app_label(&self) -> &'static str {
        "demoapp"
    }

    pub fn default_port(&self) -> u16 {
        self.port
    }

    pub fn migrations(&self) -> &'static [SqlFiles] {
        self.migrations
    }

    /// The migration before `version` (the scenario's start before the first).
    pub fn version_before(&self, version: &str) -> &'static str {
        self.migrations()
            .iter()
            .take_while(|m| m.version != version)
            .last()
            .map_or(self.start, |m| m.version)
    }

    pub fn rust_migration(&self, version: &str) -> Option<&'static dyn Recipe> {
        self.rust_migrations
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, m)| *m)
    }

    pub fn seed_plan(&self) -> &SeedPlan {
        &self.seed
    }

    /// The tables, small then large.
    /// Every table the scenario seeds, in fill order.
    pub fn tables(&self) -> Vec<&'static str> {
        self.seed.table_names()
    }

    /// The table the lab watches: the one `--large-count` fills.
    pub fn large_table(&self) -> &'static str {
        self.seed.large().table
    }

    pub fn list(&self, conn: &mut PgConnection, which: Which) -> QueryResult<Vec<u8>> {
        (self.list)(conn, which)
    }

    pub fn create_large(
        &self,
        conn: &mut PgConnection,
        name: &str,
        release: u32,
    ) -> QueryResult<i64> {
        (self.create_large)(conn, name, release)
    }

    /// The release that serves `state` (a version) on the safe path: the
    /// deployed one from its migration on, else the first; after the risky
    /// step really ran, only the new one can (that is its outage).
    pub fn release_for(&self, state: &str, risky_ran: bool) -> u32 {
        match self.deploy {
            Some(deploy) if state >= deploy.before || (risky_ran && state >= self.risky) => {
                deploy.release
            }
            _ => 1,
        }
    }
}

/// A price in cents as numeric's text, as the seeds write prices: `2099`
/// is `20.99`.
pub fn price(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// Every scenario, in project order.
pub fn all() -> &'static [&'static Scenario] {
    static ALL: [&Scenario; 9] = [
        &proj01_add_not_null_constraint::SCENARIO,
        &proj03_indexes::SCENARIO,
        &proj04_change_column_type::SCENARIO,
        &proj05_drop_column::SCENARIO,
        &proj06_large_backfills::SCENARIO,
        &proj07_add_foreign_key::SCENARIO,
        &proj08_drop_indexes::SCENARIO,
        &proj09_alter_defaults::SCENARIO,
        &proj10_large_deletes::SCENARIO,
    ];
    &ALL
}

/// The scenario of a project directory name.
pub fn find(project: &str) -> Option<&'static Scenario> {
    all().iter().copied().find(|s| s.project() == project)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Whether a migration's work is in the table at this state: done by a
/// risky step that ran for real (which leaves `marker` as the table's
/// comment), or by the safe step `version`, applied. Seeding then writes
/// rows as that work left them.
pub fn marked_or_applied(
    conn: &mut PgConnection,
    table: &str,
    marker: &str,
    version: &str,
) -> QueryResult<bool> {
    if crate::db::table_marked(conn, table, marker)? {
        return Ok(true);
    }
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM __diesel_schema_migrations WHERE version = $1) AS exists",
    )
    .bind::<diesel::sql_types::Text, _>(version)
    .get_result::<crate::db::Exists>(conn)
    .map(|e| e.exists)
}

/// Runs an `INSERT .. RETURNING id` with one text bind (the name).
pub fn insert_returning_id(conn: &mut PgConnection, sql: &str, name: &str) -> QueryResult<i64> {
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Id>(conn)
        .map(|r| r.id)
}

/// JSON as Django's `JsonResponse` writes it (Python's `json.dumps`
/// defaults): `{"id": 1, "name": "x"}`, a space after every `:` and `,`.
struct DjangoFormatter;

impl serde_json::ser::Formatter for DjangoFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    /// The same separator between members as between elements.
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.begin_array_value(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` as Django's `JsonResponse` writes it.
pub fn django_json(value: &serde_json::Value) -> QueryResult<Vec<u8>> {
    let mut json = serde_json::Serializer::with_formatter(Vec::new(), DjangoFormatter);
    serde::Serialize::serialize(value, &mut json)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    Ok(json.into_inner())
}

/// The seeds' list JSON: `{"<key>": [...], "count": n}` byte for byte as
/// the Django originals answer it, written straight from the rows: no
/// `serde_json::Value` map to build, hash and walk again on every request.
pub fn list_json<T: serde::Serialize>(key: &str, rows: &[T]) -> QueryResult<Vec<u8>> {
    use serde::ser::{SerializeMap, Serializer};
    let write = || -> serde_json::Result<Vec<u8>> {
        let mut json = serde_json::Serializer::with_formatter(
            Vec::with_capacity(64 + 110 * rows.len()),
            DjangoFormatter,
        );
        let mut map = json.serialize_map(Some(2))?;
        map.serialize_entry(key, rows)?;
        map.serialize_entry("count", &rows.len())?;
        map.end()?;
        Ok(json.into_inner())
    };
    write().map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// A list endpoint's JSON from one of two fixed SQL texts (small, large),
/// prepared once per connection ([`PreparedSql`]).
pub fn list_prepared<T>(
    conn: &mut PgConnection,
    which: Which,
    (sql, key): (&[&'static str; 2], &str),
) -> QueryResult<Vec<u8>>
where
    T: diesel::QueryableByName<diesel::pg::Pg> + serde::Serialize + 'static,
{
    let sql = match which {
        Which::Small => sql[0],
        Which::Large => sql[1],
    };
    let rows = PreparedSql(sql).load::<T>(conn)?;
    list_json(key, &rows)
}

/// A fixed SQL text that diesel prepares once per connection and then only
/// executes: [`diesel::sql_query`] is parsed and planned anew every time,
/// which is most of what the server asks of PostgreSQL per request.
#[derive(Debug, Clone, Copy)]
pub struct PreparedSql(pub &'static str);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for PreparedSql {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

/// No static id: diesel's statement cache then keys it by its SQL text.
impl diesel::query_builder::QueryId for PreparedSql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for PreparedSql {
    type SqlType = diesel::sql_types::Untyped;
}

impl RunQueryDsl<PgConnection> for PreparedSql {}

/// A typed diesel query with its row limit written into the SQL
/// (`LIMIT 10`), where diesel's `.limit(n)` binds it (`LIMIT $1`).
///
/// Diesel prepares each statement once per connection. With `LIMIT $1`,
/// PostgreSQL either plans anew on every execution (a custom plan: half its
/// time per request in proj01, `manage bench`) or keeps a generic plan,
/// which cannot see the limit and guesses a tenth of the table: on proj01's
/// 100 M-row table that made `/list_large/` a parallel sequential scan and
/// sort of every row (seconds per request). With the limit in the text the
/// statement has no parameters, so PostgreSQL plans it once, knowing it
/// wants ten rows: an index scan at any table size.
///
/// The limit is a type parameter, so the query keeps a static id (the
/// inner query's and the limit): diesel finds its prepared statement by
/// type, without writing the SQL text on every request.
#[derive(Debug, Clone, Copy)]
pub struct FirstRows<Q, const N: u32> {
    pub query: Q,
}

impl<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>, const N: u32>
    diesel::query_builder::QueryFragment<diesel::pg::Pg> for FirstRows<Q, N>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_sql(&N.to_string());
        Ok(())
    }
}

impl<Q: diesel::query_builder::QueryId, const N: u32> diesel::query_builder::QueryId
    for FirstRows<Q, N>
{
    type QueryId = FirstRows<Q::QueryId, N>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID;
}

impl<Q: diesel::query_builder::Query, const N: u32> diesel::query_builder::Query
    for FirstRows<Q, N>
{
    type SqlType = Q::SqlType;
}

impl<Q, const N: u32> RunQueryDsl<PgConnection> for FirstRows<Q, N> {}

/// The SQL text diesel sends for `query` (binds shown as `$n`): what the
/// benchmark gives pgbench, and what the plan test explains.
pub fn sql_of<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>>(query: &Q) -> String {
    let text = diesel::debug_query::<diesel::pg::Pg, _>(query).to_string();
    // debug_query appends ` -- binds: [..]`
    text.split(" -- binds: ")
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_json_is_spaced_as_django_writes_it() {
        #[derive(serde::Serialize)]
        struct Row {
            id: i64,
            name: &'static str,
        }
        let rows = [Row { id: 1, name: "a" }, Row { id: 2, name: "b" }];
        let json = super::list_json("users", &rows).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"users": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "count": 2}"#
        );
    }
}
