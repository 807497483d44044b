//! NOT NULL on an existing column without scanning under ACCESS EXCLUSIVE.
//!
//! A plain `SET NOT NULL` scans the whole table while holding ACCESS
//! EXCLUSIVE: every read and write waits for the scan. The safe recipe takes
//! four statements, each committed on its own (sent one at a time: several
//! statements in one query string would be one implicit transaction, holding
//! the first lock to the end):
//!
//! 1. `ADD CONSTRAINT .. CHECK (col IS NOT NULL) NOT VALID`: brief lock, no scan;
//! 2. `VALIDATE CONSTRAINT`: scans under SHARE UPDATE EXCLUSIVE, traffic goes on;
//! 3. `SET NOT NULL`: PostgreSQL 12+ sees the valid check and skips its scan;
//! 4. `DROP CONSTRAINT`: the check is redundant now.
//!
//! Re-running after an interruption finishes the job: step 1 is skipped when
//! the check is already there.

use std::io::{self, Write};
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::retry::{self, LockPolicy, RetryError};
use crate::timing;

#[derive(Debug, Clone, Copy)]
pub struct NotNullSpec {
    pub table: &'static str,
    /// The model name the lines use, e.g. `LargeRecord`.
    pub label: &'static str,
    pub column: &'static str,
    /// The temporary check's name.
    pub constraint: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum SafeDdlError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Locked(#[from] RetryError<diesel::result::Error>),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One statement of the recipe with the lines printed around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub start: String,
    pub done: String,
    pub sql: String,
}

/// The four statements for one column, in order.
pub fn statements(spec: &NotNullSpec) -> Vec<Statement> {
    let NotNullSpec {
        table,
        label,
        column,
        constraint,
    } = *spec;
    let step = |start: String, done: String, sql: String| Statement { start, done, sql };
    vec![
        step(
            format!("Adding CHECK ({column} IS NOT NULL) NOT VALID to {label}..."),
            format!("✓ {label} check added"),
            format!(
                "ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({column} IS NOT NULL) NOT VALID"
            ),
        ),
        step(
            format!("Validating the check on {label} (reads and writes go on)..."),
            format!("✓ {label} check validated"),
            format!("ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}"),
        ),
        step(
            format!("Setting {label}.{column} NOT NULL (the valid check spares the scan)..."),
            format!("✓ {label}.{column} is NOT NULL"),
            format!("ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL"),
        ),
        step(
            format!("Dropping the redundant check on {label}..."),
            format!("✓ {label} check dropped"),
            format!("ALTER TABLE {table} DROP CONSTRAINT {constraint}"),
        ),
    ]
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

fn constraint_exists(conn: &mut PgConnection, spec: &NotNullSpec) -> QueryResult<bool> {
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2) AS exists",
    )
    .bind::<Text, _>(spec.table)
    .bind::<Text, _>(spec.constraint)
    .get_result::<Exists>(conn)
    .map(|e| e.exists)
}

/// Runs the recipe for every column, each statement in its own transaction,
/// each retried on a lock timeout when `lock` is given.
pub fn set_not_null(
    conn: &mut PgConnection,
    specs: &[NotNullSpec],
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
) -> Result<(), SafeDdlError> {
    for spec in specs {
        let resume = constraint_exists(conn, spec)?;
        for (i, statement) in statements(spec).into_iter().enumerate() {
            if i == 0 && resume {
                continue;
            }
            timing::step_start(out, &statement.start)?;
            let started = Instant::now();
            let run = |conn: &mut PgConnection, _: &mut dyn Write| {
                crate::pg_error::execute(conn, &statement.sql)
            };
            match lock {
                Some(policy) => retry::with_retries(conn, policy, spec.table, out, run)?,
                None => run(conn, out)?,
            }
            timing::step_done(out, &statement.done, started.elapsed())?;
        }
    }
    Ok(())
}
