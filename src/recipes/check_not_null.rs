//! Recipe: NOT NULL on an existing column without scanning under ACCESS
//! EXCLUSIVE. Its naive twin is the plain `SET NOT NULL`.
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

use std::any::Any;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use super::{NaiveTwin, Recipe, RecipeResult, RunContext, twin_header, with_banner};
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

/// The recipe for a list of columns, each table in turn.
#[derive(Debug)]
pub struct CheckNotNull(pub &'static [NotNullSpec]);

impl Recipe for CheckNotNull {
    fn describe(&self) -> &'static str {
        "Enforce NOT NULL (CHECK NOT VALID, VALIDATE, SET NOT NULL)"
    }

    fn label(&self) -> &'static str {
        "safe NOT NULL"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Enforcing NOT NULL without a long lock", |out| {
            set_not_null(conn, self.0, run.lock, out)
        })
    }

    /// One `DO` statement that commits between steps: several statements in
    /// one file would run as one implicit transaction, holding the first
    /// lock to the end. The way down is the directory's `down.sql`.
    fn twin_up(&self) -> String {
        let mut sql = format!(
            "{}--
-- NOT NULL without scanning under ACCESS EXCLUSIVE:
--   1. ADD CONSTRAINT .. CHECK (col IS NOT NULL) NOT VALID  brief lock, no scan
--   2. VALIDATE CONSTRAINT  scans under SHARE UPDATE EXCLUSIVE: reads and writes go on
--   3. SET NOT NULL         PostgreSQL 12+ trusts the valid check and skips the scan
--   4. DROP CONSTRAINT      the check is now redundant
-- Each step commits before the next; re-running after an interruption finishes the job.
-- A step waits at most 1 s for its lock (`manage` also retries; this does not).
DO $$
BEGIN
    PERFORM set_config('lock_timeout', '1s', false);
",
            twin_header("check_not_null.rs")
        );
        for spec in self.0 {
            let steps = statements(spec);
            let _ = write!(
                sql,
                "    -- {table}.{column}
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = '{table}'::regclass AND conname = '{constraint}') THEN
        {add};
    END IF;
    COMMIT;
",
                table = spec.table,
                column = spec.column,
                constraint = spec.constraint,
                add = steps[0].sql,
            );
            for step in &steps[1..] {
                let _ = writeln!(sql, "    {};\n    COMMIT;", step.sql);
            }
        }
        sql.push_str("END $$;\n");
        sql
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        (!backwards).then(|| {
            (
                "Each statement is committed on its own:".to_owned(),
                self.0
                    .iter()
                    .flat_map(statements)
                    .map(|statement| statement.sql)
                    .collect(),
            )
        })
    }

    fn naive(&self) -> Option<NaiveTwin> {
        self.0.last().map(|s| NaiveTwin {
            name: "naive: SET NOT NULL (rolled back)",
            sql: format!(
                "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                s.table, s.column
            ),
            before: true,
        })
    }

    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            count: i64,
        }
        for spec in self.0 {
            let nulls = diesel::sql_query(format!(
                "SELECT count(*) AS count FROM {} WHERE {} IS NULL",
                spec.table, spec.column
            ))
            .get_result::<Count>(conn)?
            .count;
            if nulls > 0 {
                return Ok(Some(format!(
                    "{nulls} rows of {} have {} NULL after the safe path",
                    spec.table, spec.column
                )));
            }
        }
        Ok(None)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
