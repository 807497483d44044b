//! Recipe: an index dropped once the database shows nothing uses it, and
//! without queueing the table behind the drop.
//!
//! A plain `DROP INDEX` is quick but takes ACCESS EXCLUSIVE on the table:
//! behind a long transaction it queues, and every query on the table
//! queues behind it. The lasting harm is the plan regression: a query the
//! index served becomes a sequential scan. So the recipe first watches
//! `pg_stat_user_indexes.idx_scan`, the number of scans PostgreSQL counted
//! on the index, while the application runs: it drops the index only after
//! the count stood still for a whole window, and refuses if it still moves
//! after two windows and 10 s. A backend reports its counts at the end of a
//! transaction at most once a second, else 10 s later (PostgreSQL 15+), so
//! the default window is 11 s; production deserves days, and the counts are
//! per server (a replica's reads are counted on the replica). Then `DROP
//! INDEX CONCURRENTLY`: SHARE UPDATE EXCLUSIVE on the table, reads and
//! writes go on; it waits for the transactions that may use the index and
//! cannot run inside a transaction (`metadata.toml`).

use std::io::Write;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::concurrent_index::{self, IndexError, IndexSpec, IndexState};
use super::{NaiveTwin, Recipe, RecipeResult, RunContext, twin_header, with_banner};
use crate::timing;

/// How long the scan count must stand still when nobody says otherwise.
pub const DEFAULT_WATCH: Duration = Duration::from_secs(11);

/// How late a backend may report scans it made: one that flushed its
/// counts less than a second before goes idle for this long first
/// (PostgreSQL 15's `PGSTAT_IDLE_INTERVAL`).
const LATE_REPORT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DropIndexError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(
        "{name} is in use: PostgreSQL counted {scans} scans of it in the last {watched}, so a query plan relies on it; not dropped (deploy the code that stops using it, then migrate again)"
    )]
    InUse {
        name: &'static str,
        scans: i64,
        watched: String,
    },
    #[error("interrupted while watching {name}'s scans: nothing was dropped")]
    Interrupted { name: &'static str },
}

#[derive(QueryableByName)]
struct Scans {
    #[diesel(sql_type = BigInt)]
    idx_scan: i64,
}

/// The scans PostgreSQL counted on index `name` since its statistics were
/// last reset; None when there is no such index.
pub fn scans(conn: &mut PgConnection, name: &str) -> QueryResult<Option<i64>> {
    diesel::sql_query(
        "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelid = to_regclass($1)",
    )
    .bind::<Text, _>(name)
    .get_result::<Scans>(conn)
    .optional()
    .map(|found| found.map(|s| s.idx_scan))
}

/// Watches the index's scan count until it stood still for `window`;
/// fails when it still moves after two windows and [`LATE_REPORT`].
fn watch(
    conn: &mut PgConnection,
    spec: &IndexSpec,
    window: Duration,
    out: &mut dyn Write,
) -> Result<(), DropIndexError> {
    let Some(first) = scans(conn, spec.name)? else {
        return Ok(());
    };
    timing::step_start(
        out,
        &format!(
            "Watching {}'s scans until none for {} ({first} counted so far)...",
            spec.name,
            timing::seconds(window)
        ),
    )?;
    let started = Instant::now();
    let (mut last, mut still_since) = (first, Instant::now());
    while still_since.elapsed() < window {
        if started.elapsed() >= window * 2 + LATE_REPORT {
            return Err(DropIndexError::InUse {
                name: spec.name,
                scans: last - first,
                watched: timing::seconds(started.elapsed()),
            });
        }
        if crate::interrupt::sleep(Duration::from_millis(250)) {
            return Err(DropIndexError::Interrupted { name: spec.name });
        }
        let now = scans(conn, spec.name)?.unwrap_or(last);
        if now != last {
            (last, still_since) = (now, Instant::now());
        }
    }
    timing::step_done(
        out,
        &format!("✓ no scan of {} for {}", spec.name, timing::seconds(window)),
        started.elapsed(),
    )?;
    Ok(())
}

/// Whether an earlier migration dropped the index: it says so in its
/// table's comment (`<index> dropped by <version>`), and builds the index
/// again on its own way down.
fn dropped_before(conn: &mut PgConnection, spec: &IndexSpec) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Comment {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        comment: Option<String>,
    }
    let found = diesel::sql_query("SELECT obj_description(to_regclass($1), 'pg_class') AS comment")
        .bind::<Text, _>(spec.table)
        .get_result::<Comment>(conn)?;
    Ok(found
        .comment
        .is_some_and(|c| c.starts_with(&format!("{} dropped by ", spec.name))))
}

fn drop_sql(spec: &IndexSpec) -> String {
    format!("DROP INDEX CONCURRENTLY {}", spec.name)
}

/// One index, dropped concurrently once unused (see the module docs).
#[derive(Debug)]
pub struct DropUnusedIndex(pub IndexSpec);

impl Recipe for DropUnusedIndex {
    fn describe(&self) -> &'static str {
        "Drop an index once nothing scans it (idx_scan watched), concurrently"
    }

    fn label(&self) -> &'static str {
        "drop unused index"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Dropping an unused index concurrently", |out| {
            if concurrent_index::state(conn, self.0.name)? == IndexState::Valid {
                let window = run.settings.index_watch.unwrap_or(DEFAULT_WATCH);
                watch(conn, &self.0, window, out)?;
            }
            concurrent_index::unbuild(conn, &self.0, run.lock, out).map_err(DropIndexError::from)
        })
    }

    fn down(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> Option<RecipeResult> {
        Some(with_banner(
            out,
            "Building the index again concurrently",
            |out| {
                if dropped_before(conn, &self.0)? {
                    timing::step_start(
                        out,
                        &format!(
                            "{} was dropped before this migration: its own way down builds it",
                            self.0.name
                        ),
                    )?;
                    return Ok(());
                }
                concurrent_index::build(conn, &self.0, run.lock, out).map_err(DropIndexError::from)
            },
        ))
    }

    /// One statement: the `diesel` CLI cannot watch the counts first.
    fn twin_up(&self) -> String {
        format!(
            "{}--
-- DROP INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on.
-- It cannot run in a transaction, so this file holds that one statement.
-- `manage migrate` first watches the index's scans (pg_stat_user_indexes.idx_scan)
-- and refuses while they move; by hand, check them before you run this.
-- IF EXISTS: where the risky 0002 really ran (the diesel CLI runs every file),
-- the index is gone already.
DROP INDEX CONCURRENTLY IF EXISTS {};
",
            twin_header("drop_unused_index.rs"),
            self.0.name,
        )
    }

    fn twin_down(&self) -> Option<String> {
        let IndexSpec {
            table,
            name,
            columns,
            ..
        } = self.0;
        Some(format!(
            "{}-- Built again concurrently: writes go on.
CREATE INDEX CONCURRENTLY {name} ON {table} {columns};
",
            twin_header("drop_unused_index.rs"),
        ))
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        let IndexSpec {
            table,
            name,
            columns,
            ..
        } = self.0;
        Some(if backwards {
            (
                "An INVALID index of that name is dropped first; outside a transaction:".to_owned(),
                vec![format!(
                    "CREATE INDEX CONCURRENTLY {name} ON {table} {columns}"
                )],
            )
        } else {
            (
                "Once idx_scan stood still for the window; outside a transaction:".to_owned(),
                vec![drop_sql(&self.0)],
            )
        })
    }

    /// The plain drop: ACCESS EXCLUSIVE on the table, however briefly.
    fn naive(&self) -> Option<NaiveTwin> {
        Some(NaiveTwin {
            name: "naive: DROP INDEX (rolled back)",
            sql: format!("DROP INDEX {}", self.0.name),
            before: true,
        })
    }

    fn one_statement(&self) -> Option<(&'static str, String)> {
        Some(("DROP INDEX", format!("DROP INDEX {}", self.0.name)))
    }

    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        Ok(match concurrent_index::state(conn, self.0.name)? {
            IndexState::Absent => None,
            IndexState::Invalid => Some(format!("index {} is left INVALID", self.0.name)),
            IndexState::Valid => Some(format!("index {} is still there", self.0.name)),
        })
    }
}
