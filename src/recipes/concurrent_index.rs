//! Recipe: an index on a table full of rows, built without blocking its
//! writes.
//!
//! A plain `CREATE INDEX` holds SHARE on the table for the whole build:
//! reads go on, every write waits. `CREATE INDEX CONCURRENTLY` takes SHARE
//! UPDATE EXCLUSIVE instead (writes go on), scans the table twice and waits
//! for the transactions older than each phase. It cannot run inside a
//! transaction, so one migration builds one index (the `diesel` CLI runs a
//! file as one query string, which PostgreSQL runs as one transaction).
//!
//! A concurrent build that fails, is cancelled or times out waiting leaves
//! an INVALID index behind: never used by queries, yet maintained by every
//! write, and in the way of the next attempt (`already exists`). The recipe
//! looks before it builds: an INVALID index of that name is dropped
//! concurrently first, and it says so; a build that fails drops what it
//! left before it retries or gives up. `lock_timeout` bounds each of the
//! build's waits (its lock, then the older transactions): a wait that
//! times out fails the build, which the recipe cleans up and retries after
//! a backoff, as it does any failure but a unique violation, a lost
//! connection or Ctrl-C.

use std::io::Write;
use std::time::Instant;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Bool, Text};

use super::{NaiveTwin, Recipe, RecipeResult, RunContext, twin_header, with_banner};
use crate::pg_error::{Classify, Condition};
use crate::retry::LockPolicy;
use crate::timing;

#[derive(Debug, Clone, Copy)]
pub struct IndexSpec {
    pub table: &'static str,
    /// The model name the lines use, e.g. `LargeEmail`.
    pub label: &'static str,
    pub name: &'static str,
    /// What follows the table name: `(email varchar_pattern_ops)`.
    pub columns: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Query(#[from] DieselError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(
        "gave up building {name} concurrently after {attempts} attempts (each waits at most {timeout} for its lock and the older transactions); no INVALID index is left. Last error: {last}"
    )]
    GaveUp {
        name: &'static str,
        attempts: u32,
        timeout: String,
        last: DieselError,
    },
}

/// What the catalog says of an index name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexState {
    Absent,
    Valid,
    /// Left by a build that did not finish.
    Invalid,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Bool)]
    valid: bool,
}

pub fn state(conn: &mut PgConnection, name: &str) -> QueryResult<IndexState> {
    let found = diesel::sql_query(
        "SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
    )
    .bind::<Text, _>(name)
    .get_result::<Found>(conn)
    .optional()?;
    Ok(match found {
        None => IndexState::Absent,
        Some(Found { valid: false }) => IndexState::Invalid,
        Some(Found { valid: true }) => IndexState::Valid,
    })
}

fn create_sql(spec: &IndexSpec) -> String {
    format!(
        "CREATE INDEX CONCURRENTLY {} ON {} {}",
        spec.name, spec.table, spec.columns
    )
}

fn drop_sql(spec: &IndexSpec) -> String {
    format!("DROP INDEX CONCURRENTLY IF EXISTS {}", spec.name)
}

/// Failures a retry cannot mend.
fn is_final(error: &DieselError) -> bool {
    crate::interrupt::requested()
        || matches!(
            error,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
        )
        || error.condition() == Condition::ConnectionLost
}

/// Runs a statement that cannot run in a transaction (so the lab cannot tag
/// its errors, see `pg_error`): retried on any failure a retry can mend,
/// with the policy's backoff; `before_retry` puts things straight first.
fn with_plain_retries(
    conn: &mut PgConnection,
    spec: &IndexSpec,
    sql: &str,
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
    mut before_retry: impl FnMut(&mut PgConnection, &mut dyn Write) -> Result<(), IndexError>,
) -> Result<(), IndexError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match crate::pg_error::execute_plain(conn, sql) {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        let Some(policy) = lock.filter(|_| !is_final(&error)) else {
            return Err(error.into());
        };
        if tries > policy.retries {
            return Err(IndexError::GaveUp {
                name: spec.name,
                attempts: tries,
                timeout: policy.setting(),
                last: error,
            });
        }
        let pause = policy.pause(tries);
        writeln!(
            out,
            "[{}] {} failed ({error}); retry {tries}/{} in {}",
            timing::stamp_clock(),
            sql.split(" ON ").next().unwrap_or(sql),
            policy.retries,
            timing::seconds(pause)
        )?;
        out.flush()?;
        std::thread::sleep(pause);
        before_retry(conn, out)?;
    }
}

/// Drops an INVALID index left under `spec.name`, saying so.
fn drop_invalid(
    conn: &mut PgConnection,
    spec: &IndexSpec,
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
) -> Result<(), IndexError> {
    if state(conn, spec.name)? != IndexState::Invalid {
        return Ok(());
    }
    writeln!(
        out,
        "[{}] found INVALID index {} (a build that did not finish left it): dropping it concurrently",
        timing::stamp_clock(),
        spec.name
    )?;
    with_plain_retries(conn, spec, &drop_sql(spec), lock, out, |_, _| Ok(()))
}

/// Builds one index concurrently, cleaning up after any build that fails.
pub fn build(
    conn: &mut PgConnection,
    spec: &IndexSpec,
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
) -> Result<(), IndexError> {
    let label = format!("index {} on {}", spec.name, spec.label);
    if state(conn, spec.name)? == IndexState::Valid {
        timing::step_start(out, &format!("The {label} is already there"))?;
        return Ok(());
    }
    drop_invalid(conn, spec, lock, out)?;
    timing::step_start(
        out,
        &format!("Building {label} concurrently (reads and writes go on)..."),
    )?;
    let started = Instant::now();
    let built = with_plain_retries(conn, spec, &create_sql(spec), lock, out, |conn, out| {
        drop_invalid(conn, spec, lock, out)
    });
    if let Err(error) = built {
        // no INVALID index left behind, whatever stopped the build; if even
        // this fails, the next run finds it and drops it first
        if drop_invalid(conn, spec, lock, out).is_err() {
            writeln!(
                out,
                "[{}] could not drop the INVALID index {} now: the next run drops it first",
                timing::stamp_clock(),
                spec.name
            )?;
        }
        return Err(error);
    }
    timing::step_done(
        out,
        &format!("✓ {} index built", spec.label),
        started.elapsed(),
    )?;
    Ok(())
}

/// Drops the index (or what a build left of it), concurrently.
pub fn unbuild(
    conn: &mut PgConnection,
    spec: &IndexSpec,
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
) -> Result<(), IndexError> {
    if state(conn, spec.name)? == IndexState::Absent {
        return Ok(());
    }
    timing::step_start(
        out,
        &format!("Dropping index {} concurrently...", spec.name),
    )?;
    let started = Instant::now();
    with_plain_retries(conn, spec, &drop_sql(spec), lock, out, |_, _| Ok(()))?;
    timing::step_done(
        out,
        &format!("✓ {} index dropped", spec.label),
        started.elapsed(),
    )?;
    Ok(())
}

/// One index, built concurrently (one per migration: see the module docs).
#[derive(Debug)]
pub struct ConcurrentIndex(pub IndexSpec);

impl Recipe for ConcurrentIndex {
    fn describe(&self) -> &'static str {
        "Build an index concurrently (CREATE INDEX CONCURRENTLY, INVALID leftovers dropped)"
    }

    fn label(&self) -> &'static str {
        "concurrent index"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Building an index concurrently", |out| {
            build(conn, &self.0, run.lock, out)
        })
    }

    fn down(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> Option<RecipeResult> {
        Some(with_banner(out, "Dropping the index concurrently", |out| {
            unbuild(conn, &self.0, run.lock, out)
        }))
    }

    /// One statement: the `diesel` CLI cannot drop an INVALID leftover
    /// first (a `DO` block cannot run CONCURRENTLY): `manage migrate` does.
    fn twin_up(&self) -> String {
        format!(
            "{}--
-- CREATE INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes go on.
-- It cannot run in a transaction: one index per migration, and this file holds
-- one statement. A build that fails leaves an INVALID index: `manage migrate`
-- drops it and builds again; by hand, DROP INDEX CONCURRENTLY it first.
{};
",
            twin_header("concurrent_index.rs"),
            create_sql(&self.0),
        )
    }

    fn twin_down(&self) -> Option<String> {
        // without IF EXISTS: a file this statement holds alone cannot call
        // the project's guard (src/migrations/owner.rs), so the index it
        // names guards it: on another project's database it is not there,
        // the drop fails, and the diesel CLI records nothing
        Some(format!(
            "{}-- Dropped concurrently too: no ACCESS EXCLUSIVE queue on the table.
-- No IF EXISTS: on another project's database the drop fails, and nothing is recorded.
DROP INDEX CONCURRENTLY {};
",
            twin_header("concurrent_index.rs"),
            self.0.name
        ))
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        Some(if backwards {
            ("Outside a transaction:".to_owned(), vec![drop_sql(&self.0)])
        } else {
            (
                "An INVALID index of that name is dropped first; outside a transaction:".to_owned(),
                vec![create_sql(&self.0)],
            )
        })
    }

    /// The plain build is the scenario's risky migration: the demo measures
    /// it there.
    fn naive(&self) -> Option<NaiveTwin> {
        None
    }

    /// The plain build, which holds SHARE (writes wait) throughout.
    fn one_statement(&self) -> Option<(&'static str, String)> {
        let IndexSpec {
            table,
            name,
            columns,
            ..
        } = self.0;
        Some((
            "CREATE INDEX",
            format!("CREATE INDEX {name} ON {table} {columns}"),
        ))
    }

    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        Ok(match state(conn, self.0.name)? {
            IndexState::Valid => None,
            IndexState::Invalid => Some(format!("index {} is INVALID", self.0.name)),
            IndexState::Absent => Some(format!("index {} is missing", self.0.name)),
        })
    }
}
