//! Safe migration recipes: one type per file, behind one trait.
//!
//! A recipe is what `manage` runs from Rust in place of a migration's SQL
//! file, because doing it safely needs more than one transaction, retries,
//! or a loop: the batched backfill, NOT NULL through a CHECK, and so on.
//! Each recipe says how it runs (with `lock_timeout` and retries), how it
//! reverts, the plain-SQL twin the `diesel` CLI runs from its directory, and
//! the naive twin the demo measures beside it. A scenario names its recipes
//! by migration version ([`crate::scenarios::Scenario::rust_migrations`]);
//! the runner, `sqlmigrate`, the demo and the twin check go through this
//! trait only, so a new recipe is a new file here and nothing else.

pub mod batched_backfill;
pub mod batched_delete;
pub mod check_not_null;
pub mod committed;
pub mod concurrent_index;
pub mod drop_unused_index;
pub mod foreign_key;

use std::io::Write;

use diesel::prelude::*;

pub use batched_backfill::BatchedBackfill;
pub use batched_delete::BatchedDelete;
pub use check_not_null::CheckNotNull;
pub use concurrent_index::ConcurrentIndex;
pub use drop_unused_index::DropUnusedIndex;
pub use foreign_key::ForeignKeyNotValid;

use crate::retry::LockPolicy;
use crate::timing;

/// The flags of the Rust migrations (`migrate` and `demo`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunSettings {
    /// Overrides the scenario's default backfill batch size.
    pub batch_size: Option<u64>,
    /// Adapts the backfill's batch size to take about this long per batch.
    pub batch_time: Option<std::time::Duration>,
    pub pause: std::time::Duration,
    pub progress: bool,
    /// How the safe migrations wait for their locks.
    pub lock: LockPolicy,
    /// The backfill vacuums the table after this many rows.
    pub vacuum_every: Option<u64>,
    /// The limits the backfill keeps to while it runs.
    pub budget: crate::budget::Budget,
    /// How long an index's scan count must stand still before it is
    /// dropped (None: [`drop_unused_index::DEFAULT_WATCH`]).
    pub index_watch: Option<std::time::Duration>,
}

/// What a recipe runs with.
#[derive(Debug, Clone, Copy)]
pub struct RunContext<'a> {
    pub settings: &'a RunSettings,
    /// How its statements wait for locks; None runs them as naive code would.
    pub lock: Option<&'a LockPolicy>,
}

/// A recipe's failure, as diesel's migration harness carries it.
pub type RecipeResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What code written without care would run instead of the recipe: the
/// demo runs it in a transaction it rolls back and reports it beside the
/// recipe's own step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaiveTwin {
    /// The demo's step name: `naive: one UPDATE (rolled back)`.
    pub name: &'static str,
    pub sql: String,
    /// Whether it runs before the recipe's step (after it there may be
    /// nothing left to do) or after it (so its dead rows do not slow the
    /// recipe down).
    pub before: bool,
}

/// A safe recipe. See the module docs.
pub trait Recipe: Send + Sync + 'static {
    /// What `migrate --plan` says it does.
    fn describe(&self) -> &'static str;
    /// The demo's name for its step: `batched backfill`.
    fn label(&self) -> &'static str;
    /// The way up, its timing lines to `out`.
    fn up(&self, conn: &mut PgConnection, run: RunContext<'_>, out: &mut dyn Write)
    -> RecipeResult;
    /// The way down where it is Rust's; None: the directory's `down.sql`.
    fn down(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> Option<RecipeResult> {
        let _ = (conn, run, out);
        None
    }
    /// The `up.sql` the `diesel` CLI runs: the same work in plain SQL.
    fn twin_up(&self) -> String;
    /// The `down.sql`, where [`Recipe::down`] is Rust's.
    fn twin_down(&self) -> Option<String> {
        None
    }
    /// What `sqlmigrate` shows: one comment line, then the statements the
    /// recipe sends (None: the SQL file's own text, as for any migration).
    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)>;
    /// What the demo measures beside it.
    fn naive(&self) -> Option<NaiveTwin>;
    /// The one statement the recipe does the work of (what it is called,
    /// its SQL), run in a transaction that `manage bench` rolls back: what
    /// the recipe's time is measured against.
    fn one_statement(&self) -> Option<(&'static str, String)> {
        None
    }
    /// After the walkthrough: what must hold, or why it does not.
    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        let _ = conn;
        Ok(None)
    }
    /// What it fills in batches, if it is a batched backfill: the columns
    /// (one per table, in order) and the rows per batch by default. The
    /// demo runs it again within a budget, the benchmark against one
    /// UPDATE, the tests check what it wrote.
    fn backfill(&self) -> Option<Backfilled> {
        None
    }
}

/// What a batched backfill fills ([`Recipe::backfill`]).
#[derive(Debug, Clone, Copy)]
pub struct Backfilled {
    pub specs: &'static [crate::backfill::BackfillSpec],
    pub default_batch_size: u64,
}

/// Runs `body` between the seed's banner lines.
pub fn with_banner<E>(
    out: &mut dyn Write,
    title: &str,
    body: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> RecipeResult
where
    E: std::error::Error + Send + Sync + 'static,
{
    timing::banner_start(out, title)?;
    body(out)?;
    timing::banner_end(out)?;
    Ok(())
}

/// Whether `table` carries `marker` as its comment: a risky migration that
/// ran for real did the recipe's work there, and its own way down undoes
/// it, so the recipe's way down leaves the table alone.
fn marked(conn: &mut PgConnection, table: &str, marker: Option<&str>) -> QueryResult<bool> {
    marker.map_or(Ok(false), |marker| {
        crate::db::table_marked(conn, table, marker)
    })
}

/// The first lines of every generated twin.
fn twin_header(source: &str) -> String {
    format!(
        "-- Generated by src/recipes/{source} from the specs `manage migrate` runs from Rust:\n-- the plain-SQL twin the `diesel` CLI runs. Do not edit by hand.\n"
    )
}
